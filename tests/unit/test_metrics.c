/*
 * test_metrics.c — the metrics registry and its Prometheus text rendering, checked line by line.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "strbuf.h"

/* Render reg and return the text (owned by sb). */
static const char *render(const struct metrics *reg, struct strbuf *sb)
{
	strbuf_init(sb, 1 << 20);
	assert_int_equal(metrics_render(reg, sb), 0);
	return strbuf_str(sb);
}

/* 1 when `line` is one complete line of text. */
static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p += n;
	}
	return 0;
}

static void test_format_value(void **state)
{
	static const struct { double v; const char *want; } cases[] = {
		{ 0, "0" }, { 1, "1" }, { -3, "-3" }, { 0.005, "0.005" }, { 0.1, "0.1" },
		{ 1.25, "1.25" }, { 1e20, "1e+20" }, { 1700000000, "1700000000" },
		{ INFINITY, "+Inf" }, { -INFINITY, "-Inf" }, { NAN, "NaN" },
	};
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		metrics_format_value(cases[i].v, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
}

static void test_counter_with_labels_all_series_exist(void **state)
{
	const char *const results[] = { "success", "error" };
	const struct metric_label l = { "result", results, 2 };
	struct metrics *reg = metrics_new();
	struct metric *m;
	struct strbuf sb;
	const char *t;

	(void)state;
	m = metrics_register(reg, METRIC_COUNTER, "x_total", "Things.", &l, 1, NULL, 0);
	assert_non_null(m);
	assert_int_equal(metric_add(m, (const char *[]){ "error" }, 2), 0);
	t = render(reg, &sb);
	assert_string_equal(t,
		"# HELP x_total Things.\n"
		"# TYPE x_total counter\n"
		"x_total{result=\"success\"} 0\n"
		"x_total{result=\"error\"} 2\n");
	strbuf_free(&sb);
	metrics_free(reg);
}

static void test_update_errors(void **state)
{
	const char *const vals[] = { "a" };
	const struct metric_label l = { "k", vals, 1 };
	struct metrics *reg = metrics_new();
	struct metric *c, *g, *h;
	const double b[] = { 1 };

	(void)state;
	c = metrics_register(reg, METRIC_COUNTER, "c_total", "c", &l, 1, NULL, 0);
	g = metrics_register(reg, METRIC_GAUGE, "g", "g", NULL, 0, NULL, 0);
	h = metrics_register(reg, METRIC_HISTOGRAM, "h_seconds", "h", NULL, 0, b, 1);
	assert_non_null(c);
	assert_non_null(g);
	assert_non_null(h);
	assert_int_equal(metric_add(c, (const char *[]){ "b" }, 1), -ENOENT);
	assert_int_equal(metric_add(c, NULL, 1), -ENOENT);
	assert_int_equal(metric_add(c, (const char *[]){ "a" }, -1), -EINVAL);
	assert_int_equal(metric_add(c, (const char *[]){ "a" }, NAN), -EINVAL);
	assert_int_equal(metric_set(c, (const char *[]){ "a" }, 1), -EINVAL);
	assert_int_equal(metric_observe(g, NULL, 1), -EINVAL);
	assert_int_equal(metric_add(h, NULL, 1), -EINVAL);
	assert_int_equal(metric_set(g, NULL, -5), 0);
	assert_int_equal(metric_add(g, NULL, 2), 0);
	assert_true(metric_value(g, NULL) == -3);
	assert_true(isnan(metric_value(c, (const char *[]){ "zz" })));
	metrics_free(reg);
}

static void test_register_rejects(void **state)
{
	const char *const dup[] = { "a", "a" };
	const char *const one[] = { "a" };
	const struct metric_label dup_values = { "k", dup, 2 };
	const struct metric_label bad_name = { "0k", one, 1 };
	const struct metric_label reserved = { "__k", one, 1 };
	const struct metric_label le = { "le", one, 1 };
	const struct metric_label twice[] = { { "k", one, 1 }, { "k", one, 1 } };
	const double unsorted[] = { 2, 1 };
	const double inf[] = { 1, INFINITY };
	struct metrics *reg = metrics_new();

	(void)state;
	assert_null(metrics_register(reg, METRIC_GAUGE, "9bad", "h", NULL, 0, NULL, 0));
	assert_int_equal(errno, EINVAL);
	assert_null(metrics_register(reg, METRIC_GAUGE, "a-b", "h", NULL, 0, NULL, 0));
	assert_null(metrics_register(reg, METRIC_GAUGE, "", "h", NULL, 0, NULL, 0));
	assert_null(metrics_register(reg, METRIC_GAUGE, "g", "h", &dup_values, 1, NULL, 0));
	assert_null(metrics_register(reg, METRIC_GAUGE, "g", "h", &bad_name, 1, NULL, 0));
	assert_null(metrics_register(reg, METRIC_GAUGE, "g", "h", &reserved, 1, NULL, 0));
	assert_null(metrics_register(reg, METRIC_GAUGE, "g", "h", twice, 2, NULL, 0));
	assert_null(metrics_register(reg, METRIC_HISTOGRAM, "h", "h", &le, 1, unsorted, 0));
	assert_null(metrics_register(reg, METRIC_HISTOGRAM, "h", "h", NULL, 0, unsorted, 2));
	assert_null(metrics_register(reg, METRIC_HISTOGRAM, "h", "h", NULL, 0, inf, 2));
	assert_non_null(metrics_register(reg, METRIC_GAUGE, "g", "h", NULL, 0, NULL, 0));
	assert_null(metrics_register(reg, METRIC_GAUGE, "g", "h", NULL, 0, NULL, 0));
	assert_int_equal(errno, EEXIST);
	metrics_free(reg);
}

static void test_escaping(void **state)
{
	const char *const vals[] = { "a\"b\\c\nd" };
	const struct metric_label l = { "fleet", vals, 1 };
	struct metrics *reg = metrics_new();
	struct strbuf sb;
	const char *t;

	(void)state;
	assert_non_null(metrics_register(reg, METRIC_GAUGE, "g", "line1\nback\\slash \"q\"", &l, 1,
					 NULL, 0));
	t = render(reg, &sb);
	assert_true(has_line(t, "# HELP g line1\\nback\\\\slash \"q\""));
	assert_true(has_line(t, "g{fleet=\"a\\\"b\\\\c\\nd\"} 0"));
	strbuf_free(&sb);
	metrics_free(reg);
}

static void test_histogram(void **state)
{
	const double b[] = { 0.1, 1, 10 };
	const double obs[] = { 0.05, 0.1, 0.5, 3, 100 };
	struct metrics *reg = metrics_new();
	struct metric *h;
	struct strbuf sb;
	size_t i;

	(void)state;
	h = metrics_register(reg, METRIC_HISTOGRAM, "d_seconds", "D.", NULL, 0, b, 3);
	assert_non_null(h);
	for (i = 0; i < 5; i++)
		assert_int_equal(metric_observe(h, NULL, obs[i]), 0);
	assert_string_equal(render(reg, &sb),
		"# HELP d_seconds D.\n"
		"# TYPE d_seconds histogram\n"
		"d_seconds_bucket{le=\"0.1\"} 2\n"
		"d_seconds_bucket{le=\"1\"} 3\n"
		"d_seconds_bucket{le=\"10\"} 4\n"
		"d_seconds_bucket{le=\"+Inf\"} 5\n"
		"d_seconds_sum 103.65\n"
		"d_seconds_count 5\n");
	strbuf_free(&sb);
	metrics_free(reg);
}

static void test_relabel_keeps_surviving_values(void **state)
{
	const char *const before[] = { "a", "b" };
	const char *const after[] = { "b", "c" };
	const char *const ops[] = { "x", "y" };
	const struct metric_label two[] = { { "op", ops, 2 }, { "fleet", before, 2 } };
	struct metrics *reg = metrics_new();
	struct metric *m;
	struct strbuf sb;

	(void)state;
	m = metrics_register(reg, METRIC_GAUGE, "g", "G.", two, 2, NULL, 0);
	assert_non_null(m);
	assert_int_equal(metric_set(m, (const char *[]){ "y", "b" }, 7), 0);
	assert_int_equal(metric_set(m, (const char *[]){ "x", "a" }, 3), 0);
	assert_int_equal(metrics_relabel(reg, "fleet", after, 2), 0);
	assert_string_equal(render(reg, &sb),
		"# HELP g G.\n"
		"# TYPE g gauge\n"
		"g{op=\"x\",fleet=\"b\"} 0\n"
		"g{op=\"x\",fleet=\"c\"} 0\n"
		"g{op=\"y\",fleet=\"b\"} 7\n"
		"g{op=\"y\",fleet=\"c\"} 0\n");
	assert_int_equal(metric_set(m, (const char *[]){ "x", "a" }, 1), -ENOENT);
	/* A duplicate value is refused and nothing changes. */
	assert_int_equal(metrics_relabel(reg, "fleet", (const char *[]){ "z", "z" }, 2), -EINVAL);
	assert_true(metric_value(m, (const char *[]){ "y", "b" }) == 7);
	/* No fleets at all: the family keeps HELP/TYPE and has no samples. */
	assert_int_equal(metrics_relabel(reg, "fleet", NULL, 0), 0);
	strbuf_free(&sb);
	assert_string_equal(render(reg, &sb), "# HELP g G.\n# TYPE g gauge\n");
	strbuf_free(&sb);
	metrics_free(reg);
}

static void test_render_overflow(void **state)
{
	struct metrics *reg = metrics_new();
	struct strbuf sb;

	(void)state;
	assert_non_null(metrics_register(reg, METRIC_GAUGE, "g", "G.", NULL, 0, NULL, 0));
	strbuf_init(&sb, 10);
	assert_int_equal(metrics_render(reg, &sb), -ENOBUFS);
	strbuf_free(&sb);
	metrics_free(reg);
}

static void test_ivs_metrics_set(void **state)
{
	const char *const fleets[] = { "main", "eu" };
	const char *const reloaded[] = { "eu", "us" };
	struct ivs_metrics im;
	struct strbuf sb;
	const char *t;

	(void)state;
	assert_int_equal(ivs_metrics_init(&im, "1.2.3", fleets, 2), 0);
	assert_int_equal(metric_add(im.reconcile_total, (const char *[]){ "success" }, 1), 0);
	assert_int_equal(metric_observe(im.reconcile_duration, NULL, 2.2), 0);
	assert_int_equal(metric_set(im.desired_stages, (const char *[]){ "eu" }, 4), 0);
	t = render(im.reg, &sb);
	assert_true(has_line(t, "# TYPE ivs_autoscaler_reconcile_total counter"));
	assert_true(has_line(t, "ivs_autoscaler_reconcile_total{result=\"success\"} 1"));
	assert_true(has_line(t, "ivs_autoscaler_reconcile_total{result=\"requeue_after\"} 0"));
	assert_true(has_line(t, "ivs_autoscaler_reconcile_duration_seconds_bucket{le=\"0.005\"} 0"));
	assert_true(has_line(t, "ivs_autoscaler_reconcile_duration_seconds_bucket{le=\"2.5\"} 1"));
	assert_true(has_line(t, "ivs_autoscaler_reconcile_duration_seconds_bucket{le=\"60\"} 1"));
	assert_true(has_line(t, "ivs_autoscaler_reconcile_duration_seconds_bucket{le=\"+Inf\"} 1"));
	assert_true(has_line(t, "ivs_autoscaler_aws_requests_total{operation=\"CreateStage\","
				"outcome=\"throttled\"} 0"));
	assert_true(has_line(t, "ivs_autoscaler_aws_throttled_total{operation=\"ListStages\"} 0"));
	assert_true(has_line(t, "ivs_autoscaler_desired_stages{fleet=\"main\"} 0"));
	assert_true(has_line(t, "ivs_autoscaler_desired_stages{fleet=\"eu\"} 4"));
	assert_true(has_line(t, "ivs_autoscaler_fleet_fail_static{fleet=\"main\"} 0"));
	assert_true(has_line(t, "ivs_autoscaler_redis_up 0"));
	assert_true(has_line(t, "ivs_autoscaler_last_pass_success_timestamp_seconds 0"));
	assert_true(has_line(t, "ivs_autoscaler_aws_credentials_expiry_timestamp_seconds 0"));
	assert_true(has_line(t, "ivs_autoscaler_config_reload_failures_total 0"));
	assert_true(has_line(t, "ivs_autoscaler_origin_missing{fleet=\"eu\"} 0"));
	assert_true(has_line(t, "ivs_autoscaler_override_invalid{fleet=\"main\"} 0"));
	/* Only the operations the daemon calls have series. */
	assert_false(has_line(t, "ivs_autoscaler_aws_retries_total{operation=\"GetParticipant\"} 0"));
	assert_false(has_line(t, "ivs_autoscaler_aws_retries_total{operation=\"UntagResource\"} 0"));
	/* TagResource: adopting a stage created by 0.1. */
	assert_true(has_line(t, "ivs_autoscaler_aws_retries_total{operation=\"TagResource\"} 0"));
	assert_true(has_line(t, "ivs_autoscaler_leader 0"));
	assert_true(has_line(t, "ivs_autoscaler_leader_transitions_total 0"));
	assert_true(has_line(t, "ivs_autoscaler_aws_retries_total{operation=\"StopParticipantReplication\"} 0"));
	assert_true(has_line(t, "ivs_autoscaler_build_info{version=\"1.2.3\"} 1"));
	assert_true(t[strlen(t) - 1] == '\n');
	strbuf_free(&sb);

	assert_int_equal(ivs_metrics_set_fleets(&im, reloaded, 2), 0);
	t = render(im.reg, &sb);
	assert_false(has_line(t, "ivs_autoscaler_desired_stages{fleet=\"main\"} 0"));
	assert_true(has_line(t, "ivs_autoscaler_desired_stages{fleet=\"eu\"} 4"));
	assert_true(has_line(t, "ivs_autoscaler_actual_stages{fleet=\"us\"} 0"));
	strbuf_free(&sb);
	ivs_metrics_free(&im);
}

static void test_strbuf_cap(void **state)
{
	struct strbuf sb;

	(void)state;
	strbuf_init(&sb, 8);
	assert_string_equal(strbuf_str(&sb), "");
	assert_int_equal(strbuf_puts(&sb, "abcd"), 0);
	assert_int_equal(strbuf_printf(&sb, "%d", 1234), 0);
	assert_int_equal(strbuf_putc(&sb, 'x'), -ENOBUFS);
	assert_true(strbuf_overflowed(&sb));
	assert_string_equal(strbuf_str(&sb), "abcd1234");
	strbuf_consume(&sb, 3);
	assert_string_equal(strbuf_str(&sb), "d1234");
	assert_int_equal(strbuf_puts(&sb, "y"), -ENOBUFS);  /* overflow is sticky */
	strbuf_reset(&sb);
	assert_int_equal(strbuf_puts(&sb, "y"), 0);
	assert_string_equal(strbuf_str(&sb), "y");
	strbuf_consume(&sb, 100);
	assert_int_equal(sb.len, 0);
	strbuf_free(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_value),
		cmocka_unit_test(test_counter_with_labels_all_series_exist),
		cmocka_unit_test(test_update_errors),
		cmocka_unit_test(test_register_rejects),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_relabel_keeps_surviving_values),
		cmocka_unit_test(test_render_overflow),
		cmocka_unit_test(test_ivs_metrics_set),
		cmocka_unit_test(test_strbuf_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
