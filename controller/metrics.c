/*
 * metrics.c — see metrics.h.
 *
 * A family stores its series in a flat array indexed in mixed radix over the label values
 * (first label most significant), so a lookup is a few string compares and every combination
 * exists by construction.
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Refuse label sets whose product explodes: a bounded label set is the whole point. */
#define METRICS_MAX_SERIES 10000

struct series {
	double value;          /* counter/gauge value */
	uint64_t *buckets;     /* histogram: cumulative counts are computed at render time */
	double sum;
	uint64_t count;
};

struct label_decl {
	char *name;
	char **values;
	size_t nvalues;
};

struct metric {
	struct metric *next;
	enum metric_type type;
	char *name;
	char *help;
	struct label_decl *labels;
	size_t nlabels;
	double *bounds;        /* histogram upper bounds, +Inf implicit */
	size_t nbounds;
	struct series *series;
	size_t nseries;
};

struct metrics {
	struct metric *first;
	struct metric *last;
};

static int valid_name(const char *s, int allow_colon)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			 (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return 0;
	}
	return 1;
}

static void free_strings(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Copies values into a new array; -EINVAL on NULL or duplicate values. */
static int copy_values(const char *const *values, size_t n, char ***out)
{
	char **v;
	size_t i, j;

	*out = NULL;
	for (i = 0; i < n; i++) {
		if (values[i] == NULL)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (strcmp(values[i], values[j]) == 0)
				return -EINVAL;
	}
	v = calloc(n ? n : 1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		v[i] = strdup(values[i]);
		if (v[i] == NULL) {
			free_strings(v, i);
			return -ENOMEM;
		}
	}
	*out = v;
	return 0;
}

static void free_series(struct series *s, size_t n)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < n; i++)
		free(s[i].buckets);
	free(s);
}

/* Number of series for these label value counts, or 0 with -EINVAL when it is too many. */
static int count_series(const size_t *nvalues, size_t nlabels, size_t *out)
{
	size_t total = 1, i;

	for (i = 0; i < nlabels; i++) {
		if (nvalues[i] != 0 && total > METRICS_MAX_SERIES / nvalues[i])
			return -EINVAL;
		total *= nvalues[i];
	}
	*out = total;
	return 0;
}

static int alloc_series(enum metric_type type, size_t nbounds, size_t n, struct series **out)
{
	struct series *s;
	size_t i;

	s = calloc(n ? n : 1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	if (type == METRIC_HISTOGRAM) {
		for (i = 0; i < n; i++) {
			s[i].buckets = calloc(nbounds ? nbounds : 1, sizeof(uint64_t));
			if (s[i].buckets == NULL) {
				free_series(s, i);
				return -ENOMEM;
			}
		}
	}
	*out = s;
	return 0;
}

static void metric_free(struct metric *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nlabels; i++) {
		free(m->labels[i].name);
		free_strings(m->labels[i].values, m->labels[i].nvalues);
	}
	free(m->labels);
	free_series(m->series, m->nseries);
	free(m->bounds);
	free(m->name);
	free(m->help);
	free(m);
}

struct metrics *metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *reg)
{
	struct metric *m, *next;

	if (reg == NULL)
		return;
	for (m = reg->first; m != NULL; m = next) {
		next = m->next;
		metric_free(m);
	}
	free(reg);
}

struct metric *metrics_find(const struct metrics *reg, const char *name)
{
	struct metric *m;

	for (m = reg->first; m != NULL; m = m->next)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

static int check_labels(enum metric_type type, const struct metric_label *labels, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (!valid_name(labels[i].name, 0) || strncmp(labels[i].name, "__", 2) == 0)
			return -EINVAL;
		if (type == METRIC_HISTOGRAM && strcmp(labels[i].name, "le") == 0)
			return -EINVAL;
		if (labels[i].nvalues > 0 && labels[i].values == NULL)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (strcmp(labels[i].name, labels[j].name) == 0)
				return -EINVAL;
	}
	return 0;
}

static int check_bounds(const double *b, size_t n)
{
	size_t i;

	if (n > 0 && b == NULL)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
			return -EINVAL;
	}
	return 0;
}

struct metric *metrics_register(struct metrics *reg, enum metric_type type, const char *name,
				const char *help, const struct metric_label *labels,
				size_t nlabels, const double *buckets, size_t nbuckets)
{
	struct metric *m = NULL;
	size_t i, nseries;
	size_t nvalues[16];
	int r;

	if (!valid_name(name, 1) || help == NULL || nlabels > 16 ||
	    (nlabels > 0 && labels == NULL)) {
		r = -EINVAL;
		goto fail;
	}
	if (metrics_find(reg, name) != NULL) {
		r = -EEXIST;
		goto fail;
	}
	r = check_labels(type, labels, nlabels);
	if (r == 0 && type == METRIC_HISTOGRAM)
		r = check_bounds(buckets, nbuckets);
	if (r < 0)
		goto fail;
	for (i = 0; i < nlabels; i++)
		nvalues[i] = labels[i].nvalues;
	r = count_series(nvalues, nlabels, &nseries);
	if (r < 0)
		goto fail;

	r = -ENOMEM;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto fail;
	m->type = type;
	m->name = strdup(name);
	m->help = strdup(help);
	m->labels = calloc(nlabels ? nlabels : 1, sizeof(*m->labels));
	if (m->name == NULL || m->help == NULL || m->labels == NULL)
		goto fail;
	for (i = 0; i < nlabels; i++) {
		m->labels[i].name = strdup(labels[i].name);
		if (m->labels[i].name == NULL) {
			m->nlabels = i + 1;
			goto fail;
		}
		r = copy_values(labels[i].values, labels[i].nvalues, &m->labels[i].values);
		m->nlabels = i + 1;
		if (r < 0)
			goto fail;
		m->labels[i].nvalues = labels[i].nvalues;
		r = -ENOMEM;
	}
	if (type == METRIC_HISTOGRAM) {
		m->bounds = calloc(nbuckets ? nbuckets : 1, sizeof(double));
		if (m->bounds == NULL)
			goto fail;
		if (nbuckets > 0)
			memcpy(m->bounds, buckets, nbuckets * sizeof(double));
		m->nbounds = nbuckets;
	}
	r = alloc_series(type, m->nbounds, nseries, &m->series);
	if (r < 0)
		goto fail;
	m->nseries = nseries;

	if (reg->last != NULL)
		reg->last->next = m;
	else
		reg->first = m;
	reg->last = m;
	return m;
fail:
	metric_free(m);
	errno = -r;
	return NULL;
}

/* Index of the series for these label values, or -1 when a value is not declared. */
static long series_index(const struct metric *m, const char *const *label_values)
{
	size_t i, j, idx = 0;

	if (m->nlabels > 0 && label_values == NULL)
		return -1;
	for (i = 0; i < m->nlabels; i++) {
		const struct label_decl *l = &m->labels[i];

		if (label_values[i] == NULL)
			return -1;
		for (j = 0; j < l->nvalues; j++)
			if (strcmp(l->values[j], label_values[i]) == 0)
				break;
		if (j == l->nvalues)
			return -1;
		idx = idx * l->nvalues + j;
	}
	return idx < m->nseries ? (long)idx : -1;
}

int metric_add(struct metric *m, const char *const *label_values, double delta)
{
	long i;

	if (m == NULL || m->type == METRIC_HISTOGRAM || isnan(delta) ||
	    (m->type == METRIC_COUNTER && delta < 0))
		return -EINVAL;
	i = series_index(m, label_values);
	if (i < 0)
		return -ENOENT;
	m->series[i].value += delta;
	return 0;
}

int metric_set(struct metric *m, const char *const *label_values, double value)
{
	long i;

	if (m == NULL || m->type != METRIC_GAUGE)
		return -EINVAL;
	i = series_index(m, label_values);
	if (i < 0)
		return -ENOENT;
	m->series[i].value = value;
	return 0;
}

int metric_observe(struct metric *m, const char *const *label_values, double value)
{
	struct series *s;
	size_t b;
	long i;

	if (m == NULL || m->type != METRIC_HISTOGRAM || isnan(value))
		return -EINVAL;
	i = series_index(m, label_values);
	if (i < 0)
		return -ENOENT;
	s = &m->series[i];
	/* Store per-bucket counts (value <= bound); render makes them cumulative. */
	for (b = 0; b < m->nbounds; b++) {
		if (value <= m->bounds[b]) {
			s->buckets[b]++;
			break;
		}
	}
	s->sum += value;
	s->count++;
	return 0;
}

double metric_value(const struct metric *m, const char *const *label_values)
{
	long i;

	if (m == NULL)
		return NAN;
	i = series_index(m, label_values);
	if (i < 0)
		return NAN;
	return m->type == METRIC_HISTOGRAM ? (double)m->series[i].count : m->series[i].value;
}

/*
 * Relabel one family into freshly allocated label values and series, copying the values of
 * series whose labels survive. Nothing in m changes; the caller swaps on success.
 */
static int relabel_prepare(const struct metric *m, size_t label, const char *const *values,
			   size_t nvalues, char ***new_values, struct series **new_series,
			   size_t *new_nseries)
{
	size_t counts[16], i, n, k;
	struct series *s = NULL;
	char **v = NULL;
	int r;

	for (i = 0; i < m->nlabels; i++)
		counts[i] = i == label ? nvalues : m->labels[i].nvalues;
	r = count_series(counts, m->nlabels, &n);
	if (r < 0)
		return r;
	r = copy_values(values, nvalues, &v);
	if (r < 0)
		return r;
	r = alloc_series(m->type, m->nbounds, n, &s);
	if (r < 0) {
		free_strings(v, nvalues);
		return r;
	}
	/* Walk the new index space; decode each index into label values and look up the old one. */
	for (k = 0; k < n; k++) {
		const char *lv[16];
		size_t rest = k;
		long old;

		for (i = m->nlabels; i-- > 0;) {
			size_t idx = rest % counts[i];

			rest /= counts[i];
			lv[i] = i == label ? v[idx] : m->labels[i].values[idx];
		}
		old = series_index(m, lv);
		if (old < 0)
			continue;
		s[k].value = m->series[old].value;
		s[k].sum = m->series[old].sum;
		s[k].count = m->series[old].count;
		if (m->nbounds > 0)
			memcpy(s[k].buckets, m->series[old].buckets, m->nbounds * sizeof(uint64_t));
	}
	*new_values = v;
	*new_series = s;
	*new_nseries = n;
	return 0;
}

static long label_position(const struct metric *m, const char *label_name)
{
	size_t i;

	for (i = 0; i < m->nlabels; i++)
		if (strcmp(m->labels[i].name, label_name) == 0)
			return (long)i;
	return -1;
}

int metrics_relabel(struct metrics *reg, const char *label_name, const char *const *values,
		    size_t nvalues)
{
	struct prepared {
		struct metric *m;
		long label;
		char **values;
		struct series *series;
		size_t nseries;
	} *prep = NULL;
	struct metric *m;
	size_t nfam = 0, i;
	int r = 0;

	if (label_name == NULL || (nvalues > 0 && values == NULL))
		return -EINVAL;
	for (m = reg->first; m != NULL; m = m->next)
		if (label_position(m, label_name) >= 0)
			nfam++;
	if (nfam == 0)
		return 0;
	prep = calloc(nfam, sizeof(*prep));
	if (prep == NULL)
		return -ENOMEM;
	i = 0;
	for (m = reg->first; m != NULL && r == 0; m = m->next) {
		long pos = label_position(m, label_name);

		if (pos < 0)
			continue;
		prep[i].m = m;
		prep[i].label = pos;
		r = relabel_prepare(m, (size_t)pos, values, nvalues, &prep[i].values,
				    &prep[i].series, &prep[i].nseries);
		if (r == 0)
			i++;
	}
	if (r < 0) {
		while (i-- > 0) {
			free_strings(prep[i].values, nvalues);
			free_series(prep[i].series, prep[i].nseries);
		}
		free(prep);
		return r;
	}
	/* Everything is prepared: swap without any further failure point. */
	for (i = 0; i < nfam; i++) {
		struct label_decl *l = &prep[i].m->labels[prep[i].label];

		free_strings(l->values, l->nvalues);
		l->values = prep[i].values;
		l->nvalues = nvalues;
		free_series(prep[i].m->series, prep[i].m->nseries);
		prep[i].m->series = prep[i].series;
		prep[i].m->nseries = prep[i].nseries;
	}
	free(prep);
	return 0;
}

void metrics_format_value(double v, char *buf, size_t len)
{
	if (isnan(v)) {
		snprintf(buf, len, "NaN");
	} else if (isinf(v)) {
		snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
	} else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		snprintf(buf, len, "%.0f", v);
	} else {
		/* The shortest of %.15g / %.17g that reads back as the same double. */
		snprintf(buf, len, "%.15g", v);
		if (strtod(buf, NULL) != v)
			snprintf(buf, len, "%.17g", v);
	}
}

/* HELP text escapes backslash and newline; label values also escape the double quote. */
static void put_escaped(struct strbuf *out, const char *s, int quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			strbuf_puts(out, "\\\\");
		else if (*s == '\n')
			strbuf_puts(out, "\\n");
		else if (quote && *s == '"')
			strbuf_puts(out, "\\\"");
		else
			strbuf_putc(out, *s);
	}
}

/* Writes {a="x",b="y"[,le="..."]} for series k, or nothing when there are no labels. */
static void put_labels(struct strbuf *out, const struct metric *m, size_t k, const char *le)
{
	size_t i, idx[16], rest = k;

	if (m->nlabels == 0 && le == NULL)
		return;
	for (i = m->nlabels; i-- > 0;) {
		idx[i] = rest % m->labels[i].nvalues;
		rest /= m->labels[i].nvalues;
	}
	strbuf_putc(out, '{');
	for (i = 0; i < m->nlabels; i++) {
		if (i > 0)
			strbuf_putc(out, ',');
		strbuf_printf(out, "%s=\"", m->labels[i].name);
		put_escaped(out, m->labels[i].values[idx[i]], 1);
		strbuf_putc(out, '"');
	}
	if (le != NULL)
		strbuf_printf(out, "%sle=\"%s\"", m->nlabels > 0 ? "," : "", le);
	strbuf_putc(out, '}');
}

static void render_family(struct strbuf *out, const struct metric *m)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	char num[64], le[64];
	size_t k, b;

	strbuf_printf(out, "# HELP %s ", m->name);
	put_escaped(out, m->help, 0);
	strbuf_printf(out, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
	for (k = 0; k < m->nseries; k++) {
		const struct series *s = &m->series[k];

		if (m->type != METRIC_HISTOGRAM) {
			strbuf_puts(out, m->name);
			put_labels(out, m, k, NULL);
			metrics_format_value(s->value, num, sizeof(num));
			strbuf_printf(out, " %s\n", num);
			continue;
		}
		uint64_t cumulative = 0;
		for (b = 0; b < m->nbounds; b++) {
			cumulative += s->buckets[b];
			metrics_format_value(m->bounds[b], le, sizeof(le));
			strbuf_printf(out, "%s_bucket", m->name);
			put_labels(out, m, k, le);
			strbuf_printf(out, " %llu\n", (unsigned long long)cumulative);
		}
		strbuf_printf(out, "%s_bucket", m->name);
		put_labels(out, m, k, "+Inf");
		strbuf_printf(out, " %llu\n", (unsigned long long)s->count);
		strbuf_printf(out, "%s_sum", m->name);
		put_labels(out, m, k, NULL);
		metrics_format_value(s->sum, num, sizeof(num));
		strbuf_printf(out, " %s\n", num);
		strbuf_printf(out, "%s_count", m->name);
		put_labels(out, m, k, NULL);
		strbuf_printf(out, " %llu\n", (unsigned long long)s->count);
	}
}

int metrics_render(const struct metrics *reg, struct strbuf *out)
{
	const struct metric *m;

	for (m = reg->first; m != NULL; m = m->next)
		render_family(out, m);
	return strbuf_overflowed(out) ? -ENOBUFS : 0;
}

/* ---- the daemon's metric set -------------------------------------------------------------- */

/* controller-runtime's reconcile_time_seconds buckets: multi-second passes are normal at 5 TPS. */
const double ivs_metrics_reconcile_buckets[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7,
	0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25,
	30, 40, 50, 60,
};
const size_t ivs_metrics_reconcile_nbuckets =
	sizeof(ivs_metrics_reconcile_buckets) / sizeof(ivs_metrics_reconcile_buckets[0]);

const char *const ivs_metrics_results[] = { "success", "error", "requeue", "requeue_after" };
const size_t ivs_metrics_nresults = 4;

/* Only the operations the daemon calls: a series for an operation it never sends is noise. */
const char *const ivs_metrics_operations[] = {
	"ListStages", "CreateStage", "DeleteStage", "ListParticipants", "ListParticipantReplicas",
	"StartParticipantReplication", "StopParticipantReplication", "TagResource",
};
const size_t ivs_metrics_noperations =
	sizeof(ivs_metrics_operations) / sizeof(ivs_metrics_operations[0]);

/* The IVS client's error classes, plus success. */
const char *const ivs_metrics_outcomes[] = {
	"success", "throttled", "not_found", "conflict", "quota", "validation", "auth",
	"server", "network",
};
const size_t ivs_metrics_noutcomes =
	sizeof(ivs_metrics_outcomes) / sizeof(ivs_metrics_outcomes[0]);

#define P "ivs_autoscaler_"

int ivs_metrics_init(struct ivs_metrics *im, const char *version, const char *const *fleets,
		     size_t nfleets)
{
	const char *const version_values[] = { version != NULL ? version : "unknown" };
	const struct metric_label result = { "result", ivs_metrics_results, ivs_metrics_nresults };
	const struct metric_label op = { "operation", ivs_metrics_operations,
					 ivs_metrics_noperations };
	const struct metric_label op_outcome[] = {
		op, { "outcome", ivs_metrics_outcomes, ivs_metrics_noutcomes },
	};
	const struct metric_label fleet = { "fleet", fleets, nfleets };
	const struct metric_label ver = { "version", version_values, 1 };
	struct metrics *reg;
	int r;

	memset(im, 0, sizeof(*im));
	reg = metrics_new();
	if (reg == NULL)
		return -ENOMEM;
	im->reg = reg;
	im->reconcile_total = metrics_register(reg, METRIC_COUNTER, P "reconcile_total",
		"Reconcile passes by result.", &result, 1, NULL, 0);
	im->reconcile_duration = metrics_register(reg, METRIC_HISTOGRAM,
		P "reconcile_duration_seconds", "Duration of reconcile passes in seconds.",
		NULL, 0, ivs_metrics_reconcile_buckets, ivs_metrics_reconcile_nbuckets);
	im->aws_requests_total = metrics_register(reg, METRIC_COUNTER, P "aws_requests_total",
		"IVS API requests by operation and outcome.", op_outcome, 2, NULL, 0);
	im->aws_throttled_total = metrics_register(reg, METRIC_COUNTER, P "aws_throttled_total",
		"IVS API requests answered with a throttling error.", &op, 1, NULL, 0);
	im->aws_retries_total = metrics_register(reg, METRIC_COUNTER, P "aws_retries_total",
		"IVS API request retries.", &op, 1, NULL, 0);
	im->aws_rate_limit_waits_total = metrics_register(reg, METRIC_COUNTER,
		P "aws_rate_limit_waits_total",
		"IVS API requests that waited for the client-side rate budget.", &op, 1, NULL, 0);
	im->desired_stages = metrics_register(reg, METRIC_GAUGE, P "desired_stages",
		"Stages (origin included) the sizing policy wants per fleet.", &fleet, 1, NULL, 0);
	im->actual_stages = metrics_register(reg, METRIC_GAUGE, P "actual_stages",
		"Stages (origin included) serving viewers per fleet; draining ones excluded.", &fleet, 1, NULL, 0);
	im->replications_active = metrics_register(reg, METRIC_GAUGE, P "replications_active",
		"Active participant replications per fleet.", &fleet, 1, NULL, 0);
	im->fleet_capped = metrics_register(reg, METRIC_GAUGE, P "fleet_capped",
		"1 when the fleet is held below its desired size by a cap or quota.", &fleet, 1,
		NULL, 0);
	im->fleet_fail_static = metrics_register(reg, METRIC_GAUGE, P "fleet_fail_static",
		"1 when the fleet is frozen because its inputs are missing or stale.", &fleet, 1,
		NULL, 0);
	im->origin_missing = metrics_register(reg, METRIC_GAUGE, P "origin_missing",
		"1 when the last complete stage list did not contain the fleet's origin stage.",
		&fleet, 1, NULL, 0);
	im->override_invalid = metrics_register(reg, METRIC_GAUGE, P "override_invalid",
		"1 when the fleet's desired-stages override key holds a value that does not parse.",
		&fleet, 1, NULL, 0);
	im->config_reload_failures_total = metrics_register(reg, METRIC_COUNTER,
		P "config_reload_failures_total",
		"Reloads (SIGHUP) refused because the new configuration was invalid.", NULL, 0,
		NULL, 0);
	im->redis_up = metrics_register(reg, METRIC_GAUGE, P "redis_up",
		"1 when the Redis connection is established.", NULL, 0, NULL, 0);
	im->last_success_timestamp = metrics_register(reg, METRIC_GAUGE,
		P "last_pass_success_timestamp_seconds",
		"Unix time of the last successful reconcile pass; 0 before the first.", NULL, 0,
		NULL, 0);
	im->credentials_expiry = metrics_register(reg, METRIC_GAUGE,
		P "aws_credentials_expiry_timestamp_seconds",
		"Unix time at which the AWS credentials in use expire; 0 when they do not expire.",
		NULL, 0, NULL, 0);
	im->resync_period = metrics_register(reg, METRIC_GAUGE, P "resync_period_seconds",
		"Time the resync takes to visit every fleet: resync_interval, or longer when the "
		"fleets' reads at resync_share x max_tps need more.", NULL, 0, NULL, 0);
	im->leader = metrics_register(reg, METRIC_GAUGE, P "leader",
		"1 while this daemon holds the leader lease (always 1 without ha.enabled).", NULL, 0,
		NULL, 0);
	im->leader_transitions = metrics_register(reg, METRIC_COUNTER, P "leader_transitions_total",
		"Times this daemon became leader or stopped being leader.", NULL, 0, NULL, 0);
	im->build_info = metrics_register(reg, METRIC_GAUGE, P "build_info",
		"Build information; the value is always 1.", &ver, 1, NULL, 0);
	if (im->reconcile_total == NULL || im->reconcile_duration == NULL ||
	    im->aws_requests_total == NULL || im->aws_throttled_total == NULL ||
	    im->aws_retries_total == NULL || im->aws_rate_limit_waits_total == NULL ||
	    im->desired_stages == NULL || im->actual_stages == NULL ||
	    im->replications_active == NULL || im->fleet_capped == NULL ||
	    im->fleet_fail_static == NULL || im->origin_missing == NULL ||
	    im->override_invalid == NULL || im->config_reload_failures_total == NULL ||
	    im->redis_up == NULL || im->last_success_timestamp == NULL ||
	    im->credentials_expiry == NULL || im->resync_period == NULL || im->build_info == NULL ||
	    im->leader == NULL || im->leader_transitions == NULL) {
		r = errno != 0 ? -errno : -ENOMEM;
		ivs_metrics_free(im);
		return r;
	}
	return metric_set(im->build_info, version_values, 1);
}

int ivs_metrics_set_fleets(struct ivs_metrics *im, const char *const *fleets, size_t nfleets)
{
	return metrics_relabel(im->reg, "fleet", fleets, nfleets);
}

void ivs_metrics_free(struct ivs_metrics *im)
{
	metrics_free(im->reg);
	memset(im, 0, sizeof(*im));
}
