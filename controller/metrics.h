/*
 * metrics.h — a tiny metrics registry rendered as Prometheus text exposition format 0.0.4.
 *
 * Families (counter, gauge, histogram) are registered with a fixed list of label names and, per
 * label, the full list of values it may take. Every combination of label values is created at
 * registration with value 0, so every labelled series exists from start-up and dashboards never
 * see a series appear out of nowhere. Updates name an existing combination; an unknown one is
 * refused (-ENOENT) instead of creating an unbounded series.
 *
 * Labels whose values come from the configuration (the fleet names) can be re-declared on reload
 * with metrics_relabel(): series whose labels still exist keep their values, the others go.
 *
 * Not thread-safe; the daemon uses it from its single event loop.
 */
#ifndef IVS_METRICS_H
#define IVS_METRICS_H

#include <stddef.h>

struct strbuf;

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

struct metric_label {
	const char *name;
	const char *const *values;
	size_t nvalues;
};

struct metrics;
struct metric;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *reg);

/*
 * Register a family. name and help are copied; labels (may be NULL when nlabels is 0) and their
 * values are copied. buckets are the histogram's upper bounds, strictly increasing and finite
 * (+Inf is implicit); ignored for other types. Returns the family (owned by the registry) or
 * NULL with errno set: EINVAL (bad name, label or buckets), EEXIST (name taken), ENOMEM.
 */
struct metric *metrics_register(struct metrics *reg, enum metric_type type, const char *name,
				const char *help, const struct metric_label *labels,
				size_t nlabels, const double *buckets, size_t nbuckets);

/* The family registered under name, or NULL. */
struct metric *metrics_find(const struct metrics *reg, const char *name);

/*
 * Re-declare the values of label `label_name` in every family that has it. Series whose label
 * values all remain keep their current values; new combinations start at 0. All-or-nothing:
 * on error (-EINVAL duplicate/invalid value, -ENOMEM) nothing changed.
 */
int metrics_relabel(struct metrics *reg, const char *label_name, const char *const *values,
		    size_t nvalues);

/*
 * Updates. label_values lists one value per label in registration order (NULL when the family
 * has no labels). -ENOENT for an undeclared combination, -EINVAL for a wrong type, a negative
 * counter increment, or NaN.
 */
int metric_add(struct metric *m, const char *const *label_values, double delta);  /* counter, gauge */
int metric_set(struct metric *m, const char *const *label_values, double value);  /* gauge */
int metric_observe(struct metric *m, const char *const *label_values, double value); /* histogram */
/* Current value of a counter/gauge series, or the count of a histogram series; NAN if unknown. */
double metric_value(const struct metric *m, const char *const *label_values);

/*
 * Render every family in registration order: "# HELP" and "# TYPE" once per family, then its
 * samples; histogram buckets ascending ending with le="+Inf" equal to _count, then _sum and
 * _count. Label values and help text are escaped. Returns 0, or -ENOBUFS/-ENOMEM when out
 * does not hold it all.
 */
int metrics_render(const struct metrics *reg, struct strbuf *out);

/* Format a sample value as Prometheus expects ("NaN", "+Inf", shortest exact decimal). */
void metrics_format_value(double v, char *buf, size_t len);

/*
 * The daemon's metric set, all named ivs_autoscaler_*. The daemon updates these fields directly
 * with metric_add/metric_set/metric_observe.
 */
extern const double ivs_metrics_reconcile_buckets[];
extern const size_t ivs_metrics_reconcile_nbuckets;
extern const char *const ivs_metrics_results[];      /* success error requeue requeue_after */
extern const size_t ivs_metrics_nresults;
extern const char *const ivs_metrics_operations[];   /* the IVS operations the daemon calls */
extern const size_t ivs_metrics_noperations;
extern const char *const ivs_metrics_outcomes[];     /* success throttled not_found ... */
extern const size_t ivs_metrics_noutcomes;

struct ivs_metrics {
	struct metrics *reg;
	struct metric *reconcile_total;          /* counter {result} */
	struct metric *reconcile_duration;       /* histogram, seconds */
	struct metric *aws_requests_total;       /* counter {operation, outcome} */
	struct metric *aws_throttled_total;      /* counter {operation} */
	struct metric *aws_retries_total;        /* counter {operation} */
	struct metric *aws_rate_limit_waits_total; /* counter {operation} */
	struct metric *desired_stages;           /* gauge {fleet} */
	struct metric *actual_stages;            /* gauge {fleet} */
	struct metric *replications_active;      /* gauge {fleet} */
	struct metric *fleet_capped;             /* gauge {fleet}, 0/1 */
	struct metric *fleet_fail_static;        /* gauge {fleet}, 0/1 */
	struct metric *origin_missing;           /* gauge {fleet}, 0/1 */
	struct metric *override_invalid;         /* gauge {fleet}, 0/1 */
	struct metric *config_reload_failures_total; /* counter */
	struct metric *redis_up;                 /* gauge, 0/1 */
	struct metric *last_success_timestamp;   /* gauge, unix seconds (last_pass_success_...) */
	struct metric *credentials_expiry;       /* gauge, unix seconds, 0 = never */
	struct metric *resync_period;            /* gauge, seconds */
	struct metric *build_info;               /* gauge {version} = 1 */
	struct metric *leader;                   /* gauge, 0/1 */
	struct metric *leader_transitions;       /* counter */
};

/* Create the registry and every family above. 0 or negative errno (then nothing to free). */
int ivs_metrics_init(struct ivs_metrics *im, const char *version, const char *const *fleets,
		     size_t nfleets);
/* Re-declare the fleet label values after a configuration reload. */
int ivs_metrics_set_fleets(struct ivs_metrics *im, const char *const *fleets, size_t nfleets);
void ivs_metrics_free(struct ivs_metrics *im);

#endif
