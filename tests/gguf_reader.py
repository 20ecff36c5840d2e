"""gguf_reader.py - a small, independent GGUF (v2/v3) reader for the Python reference checks.

Reads the header, the metadata key/values and the tensor table, checks every length and
offset against the file size, and returns tensors as raw bytes (dequantisation is
quant_ref's job).  Written from the published file layout, not from colloq's C reader,
so the reference does not share the engine's bugs.
"""

import mmap
import os
import struct

GGUF_MAGIC = b"GGUF"

# value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)

_SCALAR = {
    UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
    FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d",
}

# tensor type id -> (elements per block, bytes per block)
TYPE_LAYOUT = {
    0: (1, 4),        # F32
    1: (1, 2),        # F16
    2: (32, 18),      # Q4_0
    3: (32, 20),      # Q4_1
    6: (32, 22),      # Q5_0
    7: (32, 24),      # Q5_1
    8: (32, 34),      # Q8_0
    9: (32, 36),      # Q8_1
    10: (256, 84),    # Q2_K
    11: (256, 110),   # Q3_K
    12: (256, 144),   # Q4_K
    13: (256, 176),   # Q5_K
    14: (256, 210),   # Q6_K
    15: (256, 292),   # Q8_K
    30: (1, 2),       # BF16
}


class GGUFError(Exception):
    pass


class Tensor:
    def __init__(self, name, type_id, ne, offset, nbytes, data):
        self.name = name
        self.type = type_id
        self.ne = ne            # ne[0] is the contiguous (row) dimension
        self.offset = offset
        self.nbytes = nbytes
        self.data = data        # memoryview of the raw bytes

    @property
    def n_elements(self):
        n = 1
        for d in self.ne:
            n *= d
        return n

    def __repr__(self):
        return "Tensor(%s, type=%d, ne=%s)" % (self.name, self.type, self.ne)


class GGUFFile:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as fp:
            size = os.fstat(fp.fileno()).st_size
            # map large files instead of reading them (an empty file cannot be mapped)
            self.buf = memoryview(mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) if size else b"")
        self.pos = 0
        self.kv = {}
        self.tensors = {}
        self._parse()

    # ---- primitive reads, each bounds-checked ----
    def _need(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise GGUFError("%s: truncated while reading %s at offset %d" % (self.path, what, self.pos))

    def _scalar(self, t, what):
        fmt = _SCALAR[t]
        size = struct.calcsize(fmt)
        self._need(size, what)
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return v

    def _string(self, what):
        n = self._scalar(UINT64, what + " length")
        self._need(n, what)
        s = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        try:
            return s.decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError("%s: %s is not valid UTF-8" % (self.path, what))

    def _value(self, t, what):
        if t in _SCALAR:
            return self._scalar(t, what)
        if t == STRING:
            return self._string(what)
        if t == ARRAY:
            et = self._scalar(UINT32, what + " element type")
            n = self._scalar(UINT64, what + " element count")
            if et == ARRAY:
                raise GGUFError("%s: nested arrays are not supported (%s)" % (self.path, what))
            if et in _SCALAR:
                size = struct.calcsize(_SCALAR[et])
                if n > (len(self.buf) - self.pos) // size:
                    raise GGUFError("%s: %s: array of %d elements exceeds the file" % (self.path, what, n))
                vals = list(struct.unpack_from("<%d%s" % (n, _SCALAR[et][1]), self.buf, self.pos))
                self.pos += n * size
                return vals
            if et == STRING:
                if n > (len(self.buf) - self.pos) // 8:
                    raise GGUFError("%s: %s: array of %d strings exceeds the file" % (self.path, what, n))
                return [self._string(what + " element") for _ in range(n)]
            raise GGUFError("%s: %s: bad array element type %d" % (self.path, what, et))
        raise GGUFError("%s: %s: bad value type %d" % (self.path, what, t))

    def _parse(self):
        self._need(4, "magic")
        if bytes(self.buf[0:4]) != GGUF_MAGIC:
            raise GGUFError("%s: not a GGUF file" % self.path)
        self.pos = 4
        self.version = self._scalar(UINT32, "version")
        if self.version not in (2, 3):
            raise GGUFError("%s: unsupported GGUF version %d" % (self.path, self.version))
        n_tensors = self._scalar(UINT64, "tensor count")
        n_kv = self._scalar(UINT64, "key/value count")
        if n_kv > len(self.buf) or n_tensors > len(self.buf):
            raise GGUFError("%s: implausible counts (%d kv, %d tensors)" % (self.path, n_kv, n_tensors))
        for _ in range(n_kv):
            key = self._string("key")
            t = self._scalar(UINT32, "type of " + key)
            if key in self.kv:
                raise GGUFError("%s: duplicate key %s" % (self.path, key))
            self.kv[key] = self._value(t, key)
        infos = []
        for _ in range(n_tensors):
            name = self._string("tensor name")
            n_dims = self._scalar(UINT32, "n_dims of " + name)
            if n_dims < 1 or n_dims > 4:
                raise GGUFError("%s: tensor %s has %d dimensions" % (self.path, name, n_dims))
            ne = [self._scalar(UINT64, "dimension of " + name) for _ in range(n_dims)]
            t = self._scalar(UINT32, "type of " + name)
            off = self._scalar(UINT64, "offset of " + name)
            infos.append((name, t, ne, off))
        align = self.kv.get("general.alignment", 32)
        if not isinstance(align, int) or align <= 0 or align & (align - 1):
            raise GGUFError("%s: bad general.alignment %r" % (self.path, align))
        data_start = (self.pos + align - 1) // align * align
        self.data_start = data_start
        for name, t, ne, off in infos:
            if t not in TYPE_LAYOUT:
                raise GGUFError("%s: tensor %s has unknown type %d" % (self.path, name, t))
            blck, bsize = TYPE_LAYOUT[t]
            n = 1
            for d in ne:
                if d <= 0:
                    raise GGUFError("%s: tensor %s has dimension %d" % (self.path, name, d))
                n *= d
            if ne[0] % blck:
                raise GGUFError("%s: tensor %s: row of %d not a multiple of block %d" % (self.path, name, ne[0], blck))
            nbytes = n // blck * bsize
            start = data_start + off
            if off % align or start + nbytes > len(self.buf):
                raise GGUFError("%s: tensor %s: data [%d, +%d) outside the file" % (self.path, name, off, nbytes))
            if name in self.tensors:
                raise GGUFError("%s: duplicate tensor %s" % (self.path, name))
            self.tensors[name] = Tensor(name, t, ne, off, nbytes, self.buf[start:start + nbytes])

    def get(self, key, default=None):
        return self.kv.get(key, default)


def open_gguf(path):
    return GGUFFile(path)


if __name__ == "__main__":
    import sys
    g = GGUFFile(sys.argv[1])
    for k, v in g.kv.items():
        if isinstance(v, list):
            print("%s = [%d items] %r..." % (k, len(v), v[:5]))
        else:
            print("%s = %r" % (k, v))
    for t in g.tensors.values():
        print(t)
