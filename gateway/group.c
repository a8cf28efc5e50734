#include "group.h"

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* One worker's; a cache line of its own so that workers do not share lines. */
typedef struct group_slot {
	_Alignas(64) uint64_t heartbeat_ms; /* group_now_ms of the last tick; 0 = none yet */
	uint32_t ready;			    /* 1 while it listens with Redis up */
	int32_t pid;			    /* written by the supervisor; 0 = no worker */
	metrics_sample_t sample;	    /* m: counted in place; c and g: group_beat's copies */
} group_slot_t;

struct group {
	uint64_t fold_seq;	  /* odd while group_retire folds a slot */
	int32_t supervisor;	  /* its pid: process_start_time_seconds is the group's start */
	unsigned n;		  /* slots */
	uint64_t retired_cpu_ns;  /* CPU time of the workers that exited */
	metrics_sample_t retired; /* their counters and histograms (gauges stay 0) */
	group_slot_t slots[];
};

static group_t *group_joined; /* this process's group, when it is a worker */
static unsigned group_index;  /* and its slot */

static size_t group_size(unsigned n)
{
	return offsetof(group_t, slots) + (size_t)n * sizeof(group_slot_t);
}

group_t *group_create(unsigned n)
{
	group_t *g =
	    mmap(NULL, group_size(n), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (g == MAP_FAILED)
		return NULL;
	/* Anonymous mappings come zeroed. */
	g->n = n;
	g->supervisor = (int32_t)getpid();
	return g;
}

void group_destroy(group_t *g)
{
	if (g)
		munmap(g, group_size(g->n));
}

uint64_t group_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Word-wise copies: relaxed atomic loads or stores of each aligned uint64_t. */
static void group_load(metrics_sample_t *dst, const metrics_sample_t *src)
{
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)src;

	for (size_t i = 0; i < METRICS_SAMPLE_WORDS; i++)
		d[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
}

static void group_store_words(uint64_t *dst, const uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		__atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
}

void group_slot_reset(group_t *g, unsigned i)
{
	__atomic_store_n(&g->slots[i].heartbeat_ms, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&g->slots[i].ready, 0, __ATOMIC_RELAXED);
}

void group_slot_set_pid(group_t *g, unsigned i, pid_t pid)
{
	__atomic_store_n(&g->slots[i].pid, (int32_t)pid, __ATOMIC_RELEASE);
}

uint64_t group_slot_heartbeat(const group_t *g, unsigned i)
{
	return __atomic_load_n(&g->slots[i].heartbeat_ms, __ATOMIC_ACQUIRE);
}

bool group_slot_ready(const group_t *g, unsigned i)
{
	return __atomic_load_n(&g->slots[i].ready, __ATOMIC_ACQUIRE) != 0;
}

void group_retire(group_t *g, unsigned i)
{
	group_slot_t *s = &g->slots[i];
	int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
	uint64_t seq = __atomic_load_n(&g->fold_seq, __ATOMIC_RELAXED);
	metrics_sample_t sum = g->retired, dead, zero;
	metrics_process_t cpu = {0};

	memset(&zero, 0, sizeof(zero));
	group_load(&dead, &s->sample);
	memset(&dead.g, 0, sizeof(dead.g)); /* what is now ends with the worker */
	metrics_sample_add(&sum, &dead);
	if (pid > 0)
		metrics_process_add(&cpu, pid, 0); /* a zombie's /proc still has its times */
	__atomic_store_n(&g->fold_seq, seq + 1, __ATOMIC_RELAXED);
	atomic_thread_fence(memory_order_release);
	group_store_words((uint64_t *)&g->retired, (const uint64_t *)&sum, METRICS_SAMPLE_WORDS);
	__atomic_store_n(&g->retired_cpu_ns, g->retired_cpu_ns + cpu.cpu_ns, __ATOMIC_RELAXED);
	group_store_words((uint64_t *)&s->sample, (const uint64_t *)&zero, METRICS_SAMPLE_WORDS);
	__atomic_store_n(&s->pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&g->fold_seq, seq + 2, __ATOMIC_RELEASE);
}

void group_join(group_t *g, unsigned i)
{
	group_joined = g;
	group_index = i;
}

bool group_is_worker(void)
{
	return group_joined != NULL;
}

metrics_t *group_own_metrics(void)
{
	return group_joined ? &group_joined->slots[group_index].sample.m : NULL;
}

void group_beat(bool ready, const metrics_sample_t *s)
{
	group_slot_t *slot;

	if (!group_joined)
		return;
	slot = &group_joined->slots[group_index];
	group_store_words((uint64_t *)&slot->sample.c, (const uint64_t *)&s->c,
			  sizeof(s->c) / sizeof(uint64_t));
	group_store_words((uint64_t *)&slot->sample.g, (const uint64_t *)&s->g,
			  sizeof(s->g) / sizeof(uint64_t));
	__atomic_store_n(&slot->ready, ready ? 1u : 0u, __ATOMIC_RELEASE);
	__atomic_store_n(&slot->heartbeat_ms, group_now_ms(), __ATOMIC_RELEASE);
}

/*
 * One pass over the group: retired + every slot into out (and, when p is
 * given, the live workers' process metrics); false when a fold ran
 * meanwhile and the pass must be retried.
 */
static bool group_pass(const group_t *g, metrics_sample_t *out, metrics_process_t *p)
{
	uint64_t seq = __atomic_load_n(&g->fold_seq, __ATOMIC_ACQUIRE);
	metrics_sample_t one;

	if (seq & 1)
		return false;
	group_load(out, &g->retired);
	if (p) {
		memset(p, 0, sizeof(*p));
		p->cpu_ns = __atomic_load_n(&g->retired_cpu_ns, __ATOMIC_RELAXED);
		metrics_process_add(p, g->supervisor, 1);
	}
	for (unsigned i = 0; i < g->n; i++) {
		int32_t pid = __atomic_load_n(&g->slots[i].pid, __ATOMIC_ACQUIRE);

		group_load(&one, &g->slots[i].sample);
		metrics_sample_add(out, &one);
		if (p && pid > 0)
			metrics_process_add(p, pid, 0);
	}
	atomic_thread_fence(memory_order_acquire);
	return __atomic_load_n(&g->fold_seq, __ATOMIC_RELAXED) == seq;
}

void group_sum(const group_t *g, metrics_sample_t *out)
{
	/* A fold takes microseconds; a supervisor stopped in the middle of one must not hang
	 * the scrape: after the retries, the last pass stands. */
	for (int tries = 0; tries < 1000 && !group_pass(g, out, NULL); tries++)
		;
}

void group_scrape(metrics_sample_t *s, metrics_process_t *p)
{
	int tries = 0;

	memset(p, 0, sizeof(*p));
	if (!group_joined) {
		metrics_process_add(p, (int)getpid(), 1);
		return;
	}
	group_beat(__atomic_load_n(&group_joined->slots[group_index].ready, __ATOMIC_RELAXED), s);
	while (!group_pass(group_joined, s, p) && ++tries < 100)
		;
}
