/*
 * threadpool.c - a persistent pool of worker threads for colloq_pool_run: the
 * caller is thread 0; workers spin briefly on a generation counter, then sleep
 * on a condition variable, so back-to-back runs cost no system calls.  Also
 * counts physical cores.  Knows nothing of kernels or models.
 * COLLOQ_SPIN_US in the environment overrides the spin time (default 200 us;
 * 0 when the pool has more threads than usable CPUs).
 */
#define _GNU_SOURCE          /* sched_getaffinity, CPU_* */
#include "threadpool.h"
#include "util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* How long a worker (or the caller) spins before sleeping: long enough to cover
 * the single-threaded gap between consecutive parallel steps of one token.  A pool
 * with more threads than usable CPUs does not spin at all (a spinning thread would
 * hold the CPU that the thread it waits for needs). */
#define POOL_SPIN_SECONDS 200e-6

/* Spin until (*v == val) == equal, or *stop is set; false when the budget runs out. */
static bool spin_until(atomic_uint *v, unsigned val, bool equal, atomic_bool *stop, double budget) {
    double t0 = 0;
    for (unsigned i = 1;; i++) {
        if ((atomic_load(v) == val) == equal || (stop && atomic_load(stop))) return true;
        if (budget <= 0) return false;
        cpu_relax();
        if ((i & 63) == 0) {
            sched_yield();              /* lets a descheduled peer run on a loaded machine */
            double t = colloq_now();
            if (t0 == 0) t0 = t;
            else if (t - t0 > budget) return false;
        }
    }
}

typedef struct {
    colloq_pool *pool;
    int          ith;
    pthread_t    tid;
} pool_worker;

struct colloq_pool {
    int            n;                 /* threads including the caller */
    double         spin_s;            /* spin budget before sleeping */
    pool_worker   *workers;           /* n - 1 */
    colloq_pool_fn fn;                /* current job, published by gen */
    void          *ctx;
    atomic_uint    gen;               /* bumped once per run */
    atomic_uint    pending;           /* workers still running the current job */
    atomic_int     sleepers;          /* workers that may be waiting on wake */
    atomic_int     caller_waiting;    /* the caller may be waiting on done */
    atomic_bool    stop;
    pthread_mutex_t mu;
    pthread_cond_t  wake, done;
};

/* Wait until gen differs from seen (or stop); returns the new generation. */
static unsigned worker_wait(colloq_pool *p, unsigned seen) {
    unsigned g;
    if (spin_until(&p->gen, seen, false, &p->stop, p->spin_s)) return atomic_load(&p->gen);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg) {
    pool_worker *w = arg;
    colloq_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = worker_wait(p, seen);
        if (atomic_load(&p->stop)) break;
        p->fn(p->ctx, w->ith, p->n);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Wake sleeping workers (after gen or stop changed). */
static void pool_wake(colloq_pool *p) {
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
}

static void pool_stop_workers(colloq_pool *p, int started) {
    atomic_store(&p->stop, true);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++) pthread_join(p->workers[i].tid, NULL);
}

/* CPUs this process may run on (affinity mask), at least 1. */
static int usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

colloq_pool *colloq_pool_new(int n_threads) {
    if (n_threads <= 0) n_threads = colloq_physical_cores();
    if (n_threads > 1024) n_threads = 1024;
    colloq_pool *p = colloq_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    p->spin_s = n_threads <= usable_cpus() ? POOL_SPIN_SECONDS : 0;
    const char *env = getenv("COLLOQ_SPIN_US");      /* override, e.g. 0 on a busy machine */
    if (env && *env) {
        char *end;
        double us = strtod(env, &end);
        if (*end == 0 && us >= 0 && us <= 1e6) p->spin_s = us * 1e-6;
    }
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_waiting, 0);
    atomic_init(&p->stop, false);
    if (pthread_mutex_init(&p->mu, NULL) != 0) { colloq_free(p); return NULL; }
    if (pthread_cond_init(&p->wake, NULL) != 0) goto fail_mu;
    if (pthread_cond_init(&p->done, NULL) != 0) goto fail_wake;
    if (n_threads > 1) {
        p->workers = colloq_calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) goto fail_done;
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].ith = i + 1;
            if (pthread_create(&p->workers[i].tid, NULL, worker_main, &p->workers[i]) != 0) {
                pool_stop_workers(p, i);
                colloq_free(p->workers);
                goto fail_done;
            }
        }
    }
    return p;
fail_done:
    pthread_cond_destroy(&p->done);
fail_wake:
    pthread_cond_destroy(&p->wake);
fail_mu:
    pthread_mutex_destroy(&p->mu);
    colloq_free(p);
    return NULL;
}

void colloq_pool_free(colloq_pool *p) {
    if (!p) return;
    if (p->n > 1) pool_stop_workers(p, p->n - 1);
    colloq_free(p->workers);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    colloq_free(p);
}

int colloq_pool_size(const colloq_pool *p) { return p ? p->n : 1; }

void colloq_pool_run(colloq_pool *p, colloq_pool_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, (unsigned)p->n - 1);
    atomic_fetch_add(&p->gen, 1);            /* publishes fn, ctx, pending */
    pool_wake(p);
    fn(ctx, 0, p->n);
    if (spin_until(&p->pending, 0, true, NULL, p->spin_s)) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->caller_waiting, 1);
    while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->done, &p->mu);
    atomic_store(&p->caller_waiting, 0);
    pthread_mutex_unlock(&p->mu);
}

/* ---- core counting ---- */

static int read_int_file(const char *path, int *out) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fscanf(f, "%d", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

int colloq_physical_cores(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    cpu_set_t allowed;
    bool have_mask = sched_getaffinity(0, sizeof allowed, &allowed) == 0;
    /* Distinct (package, core) pairs among the CPUs this process may run on. */
    enum { MAX_CPUS = 1024 };
    int seen_pkg[MAX_CPUS], seen_core[MAX_CPUS];
    int n_seen = 0;
    for (int cpu = 0; cpu < MAX_CPUS && cpu < CPU_SETSIZE; cpu++) {
        if (have_mask && !CPU_ISSET(cpu, &allowed)) continue;
        char path[128];
        int core, pkg = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        if (read_int_file(path, &core) != 0) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        (void)read_int_file(path, &pkg);
        bool dup = false;
        for (int i = 0; i < n_seen && !dup; i++) dup = seen_pkg[i] == pkg && seen_core[i] == core;
        if (!dup) { seen_pkg[n_seen] = pkg; seen_core[n_seen] = core; n_seen++; }
    }
    if (n_seen == 0) {
        if (have_mask) {
            int c = CPU_COUNT(&allowed);
            if (c > 0 && c < online) return c;
        }
        return (int)online;
    }
    return n_seen;
}
