/*
 * sha256.h - SHA-256 digest of a byte string (FIPS 180-4).
 */
#ifndef COLLOQ_SHA256_H
#define COLLOQ_SHA256_H

#include <stddef.h>
#include <stdint.h>

void colloq_sha256(const void *data, size_t n, uint8_t out[32]);

#endif
