/*
 * group.h - the memory a worker group shares: one MAP_SHARED|MAP_ANONYMOUS
 * segment that the supervisor maps before it forks, with one slot per
 * worker and the totals of the workers that exited.
 *
 * A slot is written by its worker only: the heartbeat and the ready flag
 * from its loop's tick, its metrics_t in place (the server counts into the
 * slot), the other counters and its gauges copied in by group_publish.
 * The supervisor reads the heartbeats (a worker whose loop stalls is
 * killed), and folds the slot of a worker that exited into the retired
 * totals before the slot is used again, so the group's counters never go
 * down.  Any worker answering /metrics sums retired + every slot
 * (group_scrape).
 *
 * Slots are read word by word with relaxed atomic loads while their worker
 * writes them with plain stores of aligned words: a reader sees each
 * counter at some value it had, never a torn one.  A fold is bracketed by
 * a sequence count that readers retry on, so no sum counts a worker twice
 * or not at all.
 */
#ifndef TRACKGATE_GROUP_H
#define TRACKGATE_GROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "metrics.h"

typedef struct group group_t;

/* The segment for n workers, zeroed, mapped to be inherited by fork; NULL (errno) on failure. */
group_t *group_create(unsigned n);

/* Unmaps it (the supervisor, at its end). */
void group_destroy(group_t *g);

/* CLOCK_MONOTONIC in milliseconds: the heartbeats' clock, the same in every process. */
uint64_t group_now_ms(void);

/* --- the supervisor's side -------------------------------------------------- */

/* Slot i is about to get a new worker: no heartbeat, not ready. */
void group_slot_reset(group_t *g, unsigned i);

/* Slot i's worker is pid (the supervisor sets it after fork; 0 = none). */
void group_slot_set_pid(group_t *g, unsigned i, pid_t pid);

/* Slot i's last heartbeat (group_now_ms of its tick; 0 = none yet) and ready flag. */
uint64_t group_slot_heartbeat(const group_t *g, unsigned i);
bool group_slot_ready(const group_t *g, unsigned i);

/*
 * Slot i's worker has exited (it is a zombie not yet reaped, so /proc
 * still shows its CPU time): adds its counters, histograms and CPU time to
 * the retired totals and zeroes the slot, as one step for readers.
 */
void group_retire(group_t *g, unsigned i);

/* --- a worker's side -------------------------------------------------------- */

/* In the child after fork: this process is slot i of g. */
void group_join(group_t *g, unsigned i);

/* Whether this process is a worker of a group. */
bool group_is_worker(void);

/* This worker's metrics_t, in its slot (the server counts there); NULL outside a group. */
metrics_t *group_own_metrics(void);

/* From the loop's tick: the heartbeat (now), whether it serves, its counters and gauges. */
void group_beat(bool ready, const metrics_sample_t *s);

/*
 * What a scrape shows.  In a worker: publishes s as its own, then replaces
 * it with the group's sum (retired + every slot) and p with the process
 * metrics of the supervisor and its live workers (CPU time including the
 * exited ones').  Outside a group s stays and p is this process's.
 */
void group_scrape(metrics_sample_t *s, metrics_process_t *p);

/* For tests: the sum of g's retired totals and slots, without publishing anything. */
void group_sum(const group_t *g, metrics_sample_t *out);

#endif
