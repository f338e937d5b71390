/*
 * test_config.c — the config loader: a table of good and malformed documents, each malformed one
 * asserting one exact "file:line:col: key: message", plus secrets, printing and key templates.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

#define ARN  "arn:aws:ivs:us-east-1:123456789012:stage/AbCd1234"
#define ARN2 "arn:aws:ivs:us-east-1:123456789012:stage/EfGh5678"
/* A valid fleets section whose first line is line 1 of the snippet it ends. */
#define FLEET "fleets:\n  - name: main\n    origin_stage_arn: " ARN "\n"

struct config_case {
	const char *name;
	const char *yaml;
	const char *want;   /* NULL: must load; else an error that must appear verbatim */
};

static const struct config_case cases[] = {
	/* ---- good ---- */
	{ "minimal", FLEET, NULL },
	{ "empty sections are defaults", "aws:\nredis:\ncontrol:\nreconcile:\n" FLEET, NULL },
	{ "two fleets with {fleet} templates",
	  "redis:\n  keys:\n    publisher: \"publisher:{fleet}:info\"\n    desired_stages: \"{fleet}:desired\"\n"
	  "fleets:\n  - name: a\n    origin_stage_arn: " ARN "\n  - name: b\n    origin_stage_arn: " ARN2 "\n",
	  NULL },
	{ "two fleets with per-fleet overrides",
	  "fleets:\n  - name: a\n    origin_stage_arn: " ARN "\n"
	  "  - name: b\n    origin_stage_arn: " ARN2 "\n    keys:\n      publisher: p:b\n      desired_stages: d:b\n",
	  NULL },
	{ "unix socket url", "redis:\n  url: unix:///run/redis/redis.sock?db=2\n" FLEET, NULL },
	{ "redis url without port or db", "redis:\n  url: redis://cache.internal\n" FLEET, NULL },
	{ "ipv6 redis", "redis:\n  url: \"redis://[::1]:6380/1\"\n" FLEET, NULL },
	{ "loopback http endpoints",
	  "aws:\n  endpoint: http://127.0.0.2:4566\n" FLEET, NULL },
	{ "localhost endpoint", "aws:\n  endpoint: http://localhost:1234/\n" FLEET, NULL },
	{ "v6 loopback endpoint", "aws:\n  endpoint: \"http://[::1]:8443\"\n" FLEET, NULL },
	{ "https endpoint", "aws:\n  endpoint: https://ivsrealtime.eu-west-1.amazonaws.com\n" FLEET, NULL },
	{ "empty region", "aws:\n  region: \"\"\n" FLEET, NULL },
	{ "utilization exactly 1, reconnect 0s",
	  FLEET "    target_utilization: 1\n    reconnect_window: 0s\n    min_replicas: 5\n", NULL },
	{ "tags", FLEET "    tags:\n      team: media\n      cost-center: \"42\"\n      note: \"\"\n", NULL },
	{ "flow style", "{fleets: [{name: x, origin_stage_arn: \"" ARN "\"}]}", NULL },
	{ "comments only around", "# top\n" FLEET "# end\n", NULL },

	/* ---- document level ---- */
	{ "empty document", "", "t.yaml:1:1: missing required key \"fleets\"" },
	{ "top level is a sequence", "- a\n- b\n",
	  "t.yaml:1:1: the top level must be a mapping (aws:, redis:, fleets:, ...)" },
	{ "billion laughs",
	  "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	  "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	  "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
	  "t.yaml:1:4: YAML anchors (&name) are not allowed in the configuration" },
	{ "bare alias", "fleets: *x\n", NULL /* checked below: parse error from libyaml */ },
	{ "tag", FLEET "    max_replicas: !!int 3\n",
	  "t.yaml:4:19: YAML tags (!tag) are not allowed in the configuration" },
	{ "two documents", FLEET "---\n" FLEET,
	  "t.yaml:4:1: only one YAML document is allowed (found a second one)" },
	{ "too deep", "aws: [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]\n",
	  "t.yaml:1:21: nesting deeper than 16 levels is not allowed" },
	{ "syntax error", "aws:\n  region: [us-east-1\n" FLEET, NULL /* checked below */ },
	{ "invalid utf-8", "aws:\n  profile: \"\xc3\x28\"\n" FLEET,
	  "t.yaml:2:14: invalid trailing UTF-8 octet (not valid UTF-8 text?)" },

	/* ---- unknown and duplicate keys at each level ---- */
	{ "unknown top key", "awz:\n  region: x\n" FLEET,
	  "t.yaml:1:1: awz: unknown key (expected one of: aws, redis, control, reconcile, controller, ha, metrics, fleets)" },
	{ "metrics endpoint", "metrics:\n  listen: \"127.0.0.1:9464\"\n" FLEET, NULL },
	{ "metrics endpoint ipv6", "metrics:\n  listen: \"[::1]:9464\"\n" FLEET, NULL },
	{ "metrics endpoint off", "metrics:\n  listen: \"\"\n" FLEET, NULL },
	{ "metrics host name", "metrics:\n  listen: localhost:9464\n" FLEET,
	  "t.yaml:2:11: metrics.listen: not a numeric IPv4 address (host names are not resolved)" },
	{ "metrics no port", "metrics:\n  listen: 127.0.0.1\n" FLEET,
	  "t.yaml:2:11: metrics.listen: expected HOST:PORT (missing the port)" },
	{ "metrics port 0", "metrics:\n  listen: 127.0.0.1:0\n" FLEET,
	  "t.yaml:2:11: metrics.listen: the port must be from 1 to 65535" },
	{ "metrics port range", "metrics:\n  listen: 127.0.0.1:70000\n" FLEET,
	  "t.yaml:2:11: metrics.listen: the port must be a number from 0 to 65535" },
	{ "metrics ipv6 unbracketed", "metrics:\n  listen: \"::1:9464\"\n" FLEET,
	  "t.yaml:2:11: metrics.listen: an IPv6 address goes in brackets: [IPV6]:PORT" },
	{ "unknown metrics key", "metrics:\n  port: 9464\n" FLEET,
	  "t.yaml:2:3: metrics.port: unknown key (expected one of: listen)" },
	{ "unknown aws key", "aws:\n  regoin: x\n" FLEET,
	  "t.yaml:2:3: aws.regoin: unknown key (expected one of: region, endpoint, profile, "
	  "credentials_file, max_tps, resync_share, timeout, connect_timeout)" },
	{ "unknown redis key", "redis:\n  host: x\n" FLEET,
	  "t.yaml:2:3: redis.host: unknown key (expected one of: url, password, password_file, "
	  "key_prefix, timeout, wake_channel, keys, tls, sentinel)" },
	{ "unknown redis.keys key", "redis:\n  keys:\n    viewer: \"v:{arn}\"\n" FLEET,
	  "t.yaml:3:5: redis.keys.viewer: unknown key (expected one of: viewers, publisher, "
	  "desired_stages, open_stages)" },
	{ "unknown control key", "control:\n  path: /x\n" FLEET,
	  "t.yaml:2:3: control.path: unknown key (expected one of: socket, admin_group, max_clients, "
	  "idle_timeout)" },
	{ "unknown reconcile key", "reconcile:\n  interval: 5s\n" FLEET,
	  "t.yaml:2:3: reconcile.interval: unknown key (expected one of: resync_interval, "
	  "backoff_initial, backoff_max, stop_timeout)" },
	{ "unknown controller key", "controller:\n  name: x\n" FLEET,
	  "t.yaml:2:3: controller.name: unknown key (expected one of: owner, instance)" },
	{ "unknown ha key", "ha:\n  ttl: 5s\n" FLEET,
	  "t.yaml:2:3: ha.ttl: unknown key (expected one of: enabled, lease_key, lease_duration, "
	  "renew_deadline, retry_period)" },
	{ "unknown fleet key", FLEET "    max_replica: 3\n",
	  "t.yaml:4:5: fleets[0].max_replica: unknown key (expected one of: name, origin_stage_arn, "
	  "viewers_per_stage, target_utilization, min_replicas, max_replicas, scale_down_delay, "
	  "drain_timeout, drain_min, reconnect_window, tags, keys)" },
	{ "viewers is not per fleet", FLEET "    keys:\n      viewers: \"v:{arn}\"\n",
	  "t.yaml:5:7: fleets[0].keys.viewers: unknown key (expected one of: publisher, "
	  "desired_stages, open_stages)" },
	{ "duplicate key", "aws:\n  region: us-east-1\n  region: eu-west-1\n" FLEET,
	  "t.yaml:3:3: aws.region: duplicate key (first given at line 2)" },
	{ "duplicate tag", FLEET "    tags:\n      a: x\n      a: y\n",
	  "t.yaml:6:7: fleets[0].tags.a: duplicate tag" },

	/* ---- types ---- */
	{ "mapping where a scalar belongs", "aws:\n  region:\n    x: y\n" FLEET,
	  "t.yaml:3:5: aws.region: expected a string, got a mapping" },
	{ "boolean where a string belongs", "control:\n  admin_group: yes\n" FLEET,
	  "t.yaml:2:16: control.admin_group: expected a string, got a boolean (quote it if you mean the text)" },
	{ "null where a string belongs", "aws:\n  profile: ~\n" FLEET,
	  "t.yaml:2:12: aws.profile: expected a string, got null (quote it if you mean the text)" },
	{ "abc for an integer", FLEET "    max_replicas: abc\n",
	  "t.yaml:4:19: fleets[0].max_replicas: expected an integer, got \"abc\"" },
	{ "1.5 for an integer", FLEET "    viewers_per_stage: 1.5\n",
	  "t.yaml:4:24: fleets[0].viewers_per_stage: expected an integer, got \"1.5\"" },
	{ "quoted integer", FLEET "    max_replicas: \"3\"\n",
	  "t.yaml:4:19: fleets[0].max_replicas: expected an integer, got a quoted string" },
	{ "section is a scalar", "aws: us-east-1\n" FLEET,
	  "t.yaml:1:6: aws: expected a mapping, got a plain scalar" },
	{ "fleets is a mapping", "fleets:\n  name: a\n",
	  "t.yaml:2:3: fleets: expected a sequence of fleets (- name: ...), got a mapping" },
	{ "fleets empty", "fleets: []\n", "t.yaml:1:9: fleets: at least one fleet is required" },
	{ "fleet is a scalar", "fleets:\n  - main\n",
	  "t.yaml:2:5: fleets[0]: expected a mapping with name and origin_stage_arn, got a plain scalar" },
	{ "number-like tag value is text", FLEET "    tags:\n      n: 1e3\n", NULL },
	{ "NUL in a string", "aws:\n  profile: \"a\\0b\"\n" FLEET,
	  "t.yaml:2:12: aws.profile: string contains a NUL character" },

	/* ---- required and ranges ---- */
	{ "missing name", "fleets:\n  - origin_stage_arn: " ARN "\n",
	  "t.yaml:2:5: fleets[0]: missing required key \"name\"" },
	{ "missing origin", "fleets:\n  - name: a\n",
	  "t.yaml:2:5: fleets[0]: missing required key \"origin_stage_arn\"" },
	{ "bad fleet name", "fleets:\n  - name: \"a b\"\n    origin_stage_arn: " ARN "\n",
	  "t.yaml:2:11: fleets[0].name: must contain only A-Z, a-z, 0-9, '_' and '-'" },
	{ "fleet name too long",
	  "fleets:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	  "    origin_stage_arn: " ARN "\n",
	  "t.yaml:2:11: fleets[0].name: must be 1 to 64 characters" },
	{ "duplicate fleet names",
	  "fleets:\n  - name: a\n    origin_stage_arn: " ARN "\n  - name: a\n    origin_stage_arn: " ARN2 "\n",
	  "t.yaml:4:11: fleets[1].name: duplicate fleet name \"a\" (also fleets[0], line 2)" },
	{ "duplicate origin",
	  "fleets:\n  - name: a\n    origin_stage_arn: " ARN "\n  - name: b\n    origin_stage_arn: " ARN "\n",
	  "t.yaml:5:23: fleets[1].origin_stage_arn: origin stage is also used by fleet \"a\" (line 3)" },
	{ "shared template",
	  "fleets:\n  - name: a\n    origin_stage_arn: " ARN "\n  - name: b\n    origin_stage_arn: " ARN2 "\n",
	  "t.yaml:4:5: fleets[1].keys.publisher: Redis key \"ivs:prod:publisher:info\" of fleet \"b\" is "
	  "also the publisher key of fleet \"a\"; a template shared by two fleets is a config error: "
	  "put {fleet} in it or set keys.publisher for each fleet" },
	{ "override collides with another kind",
	  "redis:\n  keys:\n    publisher: \"pub:{fleet}\"\n    desired_stages: \"des:{fleet}\"\n"
	  "fleets:\n  - name: a\n    origin_stage_arn: " ARN "\n  - name: b\n    origin_stage_arn: " ARN2 "\n"
	  "    keys:\n      open_stages: \"pub:a\"\n",
	  "t.yaml:11:7: fleets[1].keys.open_stages: Redis key \"ivs:prod:pub:a\" of fleet \"b\" is also "
	  "the publisher key of fleet \"a\"; a template shared by two fleets is a config error: "
	  "put {fleet} in it or set keys.open_stages for each fleet" },
	{ "min > max", FLEET "    min_replicas: 4\n    max_replicas: 3\n",
	  "t.yaml:4:19: fleets[0].min_replicas: min_replicas (4) must not exceed max_replicas (3)" },
	{ "max_replicas over the replication cap", FLEET "    max_replicas: 6\n",
	  "t.yaml:4:19: fleets[0].max_replicas: must be between 0 and 5, got 6" },
	{ "negative min_replicas", FLEET "    min_replicas: -1\n",
	  "t.yaml:4:19: fleets[0].min_replicas: must be between 0 and 5, got -1" },
	{ "drain_timeout over a day", FLEET "    drain_timeout: 25h\n",
	  "t.yaml:4:20: fleets[0].drain_timeout: must be at most 24h" },
	{ "scale_down_delay over a day", FLEET "    scale_down_delay: 24h1s\n",
	  "t.yaml:4:23: fleets[0].scale_down_delay: must be at most 24h" },
	{ "viewers_per_stage 0", FLEET "    viewers_per_stage: 0\n",
	  "t.yaml:4:24: fleets[0].viewers_per_stage: must be between 1 and 1000000, got 0" },
	{ "utilization 0", FLEET "    target_utilization: 0\n",
	  "t.yaml:4:25: fleets[0].target_utilization: must be greater than 0 and at most 1, got 0" },
	{ "utilization 1.01", FLEET "    target_utilization: 1.01\n",
	  "t.yaml:4:25: fleets[0].target_utilization: must be greater than 0 and at most 1, got 1.01" },
	{ "utilization negative", FLEET "    target_utilization: -0.5\n",
	  "t.yaml:4:25: fleets[0].target_utilization: must be greater than 0 and at most 1, got -0.5" },
	{ "utilization nan", FLEET "    target_utilization: .nan\n",
	  "t.yaml:4:25: fleets[0].target_utilization: expected a number, got \".nan\"" },
	{ "max_tps 0", "aws:\n  max_tps: 0\n" FLEET,
	  "t.yaml:2:12: aws.max_tps: must be greater than 0 and at most 100, got 0" },
	{ "max_tps 101", "aws:\n  max_tps: 101\n" FLEET,
	  "t.yaml:2:12: aws.max_tps: must be greater than 0 and at most 100, got 101" },
	{ "resync_share 0", "aws:\n  resync_share: 0\n" FLEET,
	  "t.yaml:2:17: aws.resync_share: must be greater than 0 and at most 1, got 0" },
	{ "resync_share 1.5", "aws:\n  resync_share: 1.5\n" FLEET,
	  "t.yaml:2:17: aws.resync_share: must be greater than 0 and at most 1, got 1.5" },
	{ "resync_share negative", "aws:\n  resync_share: -0.1\n" FLEET,
	  "t.yaml:2:17: aws.resync_share: must be greater than 0 and at most 1, got -0.1" },
	{ "resync_share percent", "aws:\n  resync_share: 50%\n" FLEET,
	  "t.yaml:2:17: aws.resync_share: expected a number, got \"50%\"" },
	{ "resync_share string", "aws:\n  resync_share: \"0.5\"\n" FLEET,
	  "t.yaml:2:17: aws.resync_share: expected a number, got a quoted string" },
	{ "resync_share list", "aws:\n  resync_share: [0.5]\n" FLEET,
	  "t.yaml:2:17: aws.resync_share: expected a number, got a sequence" },
	{ "max_clients 0", "control:\n  max_clients: 0\n" FLEET,
	  "t.yaml:2:16: control.max_clients: must be between 1 and 1024, got 0" },
	{ "too many tags", NULL, "t.yaml:5:7: fleets[0].tags: at most 45 tags are allowed (IVS allows 50, 5 are ours), got 46" },
	{ "reserved tag", FLEET "    tags:\n      \"ivs-autoscaler:fleet\": x\n",
	  "t.yaml:5:7: fleets[0].tags.ivs-autoscaler:fleet: tag keys starting with \"ivs-autoscaler:\" "
	  "or \"aws:\" are reserved" },
	{ "tag value too long", NULL /* built below */, NULL },

	/* ---- durations ---- */
	{ "zero duration", FLEET "    drain_timeout: 0s\n",
	  "t.yaml:4:20: fleets[0].drain_timeout: must be greater than 0" },
	{ "negative duration", "aws:\n  timeout: -5s\n" FLEET,
	  "t.yaml:2:12: aws.timeout: must not be negative" },
	{ "duration without unit", FLEET "    scale_down_delay: 300\n",
	  "t.yaml:4:23: fleets[0].scale_down_delay: expected a duration like 250ms, 15s, 5m or 1h30m, got \"300\"" },
	/* ---- controller and ha ---- */
	{ "owner and instance", "controller:\n  owner: prod\n  instance: host-a_1\n" FLEET, NULL },
	{ "ha with sub-second timings",
	  "ha:\n  enabled: true\n  lease_key: lead\n  lease_duration: 1s\n  renew_deadline: 600ms\n"
	  "  retry_period: 100ms\n" FLEET, NULL },
	{ "ha at the upper bound", "ha:\n  lease_duration: 5m\n  renew_deadline: 4m\n" FLEET, NULL },
	{ "owner with a dot", "controller:\n  owner: prod.eu\n" FLEET,
	  "t.yaml:2:10: controller.owner: must contain only A-Z, a-z, 0-9, '_' and '-'" },
	{ "owner too long", "controller:\n  owner: "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" FLEET,
	  "t.yaml:2:10: controller.owner: must be 1 to 64 characters" },
	{ "instance with a colon", "controller:\n  instance: \"a:b\"\n" FLEET,
	  "t.yaml:2:13: controller.instance: must contain only A-Z, a-z, 0-9, '_' and '-'" },
	{ "owner is a number list", "controller:\n  owner: [1]\n" FLEET,
	  "t.yaml:2:10: controller.owner: expected a string, got a sequence" },
	{ "ha.enabled yes", "ha:\n  enabled: yes\n" FLEET,
	  "t.yaml:2:12: ha.enabled: expected true or false, got \"yes\"" },
	{ "ha.enabled mapping", "ha:\n  enabled: {}\n" FLEET,
	  "t.yaml:2:12: ha.enabled: expected true or false, got a mapping" },
	{ "ha.lease_key with a space", "ha:\n  lease_key: \"a b\"\n" FLEET,
	  "t.yaml:2:14: ha.lease_key: must not contain spaces or control characters" },
	{ "ha.lease_key empty", "ha:\n  lease_key: \"\"\n" FLEET,
	  "t.yaml:2:14: ha.lease_key: must not be empty" },
	{ "lease under 1s", "ha:\n  lease_duration: 999ms\n" FLEET,
	  "t.yaml:2:19: ha.lease_duration: must be at least 1s" },
	{ "lease over 5m", "ha:\n  lease_duration: 5m1s\n" FLEET,
	  "t.yaml:2:19: ha.lease_duration: must be at most 5m" },
	{ "lease not a duration", "ha:\n  lease_duration: soon\n" FLEET,
	  "t.yaml:2:19: ha.lease_duration: expected a duration like 250ms, 15s, 5m or 1h30m, got \"soon\"" },
	{ "renew deadline under 500ms", "ha:\n  renew_deadline: 499ms\n  retry_period: 100ms\n" FLEET,
	  "t.yaml:2:19: ha.renew_deadline: must be at least 500ms" },
	{ "renew deadline equals lease", "ha:\n  lease_duration: 10s\n" FLEET,
	  "t.yaml:2:3: ha.renew_deadline: must be less than ha.lease_duration" },
	{ "renew deadline above lease", "ha:\n  lease_duration: 5s\n  renew_deadline: 6s\n" FLEET,
	  "t.yaml:3:19: ha.renew_deadline: must be less than ha.lease_duration" },
	{ "retry period under 100ms", "ha:\n  retry_period: 99ms\n" FLEET,
	  "t.yaml:2:17: ha.retry_period: must be at least 100ms" },
	{ "retry period equals renew deadline", "ha:\n  renew_deadline: 2s\n  retry_period: 2s\n" FLEET,
	  "t.yaml:3:17: ha.retry_period: must be less than ha.renew_deadline" },
	{ "negative retry period", "ha:\n  retry_period: -1s\n" FLEET,
	  "t.yaml:2:17: ha.retry_period: must not be negative" },
	{ "ha is a list", "ha: [1]\n" FLEET, "t.yaml:1:5: ha: expected a mapping, got a sequence" },

	{ "resync under 1s", "reconcile:\n  resync_interval: 999ms\n" FLEET,
	  "t.yaml:2:20: reconcile.resync_interval: must be at least 1s" },
	{ "duration too large", "reconcile:\n  stop_timeout: 100000h\n" FLEET,
	  "t.yaml:2:17: reconcile.stop_timeout: must be at most 720h" },
	{ "drain_min over a day", FLEET "    drain_min: 25h\n",
	  "t.yaml:4:16: fleets[0].drain_min: must be at most 24h" },
	{ "drain_min not a duration", FLEET "    drain_min: soon\n",
	  "t.yaml:4:16: fleets[0].drain_min: expected a duration like 250ms, 15s, 5m or 1h30m, got \"soon\"" },
	{ "reconnect_window over 300s", FLEET "    reconnect_window: 301s\n",
	  "t.yaml:4:23: fleets[0].reconnect_window: must be at most 5m" },
	{ "reconnect_window fraction", FLEET "    reconnect_window: 1500ms\n",
	  "t.yaml:4:23: fleets[0].reconnect_window: must be a whole number of seconds" },
	{ "backoff initial > max", "reconcile:\n  backoff_initial: 10m\n  backoff_max: 1m\n" FLEET,
	  "t.yaml:2:20: reconcile.backoff_initial: must not exceed reconcile.backoff_max" },

	/* ---- ARNs ---- */
	{ "channel ARN", "fleets:\n  - name: a\n    origin_stage_arn: arn:aws:ivs:us-east-1:1:channel/x\n",
	  "t.yaml:3:23: fleets[0].origin_stage_arn: must be an IVS stage ARN like "
	  "arn:aws:ivs:us-east-1:123456789012:stage/AbCd1234" },
	{ "ARN without account", "fleets:\n  - name: a\n    origin_stage_arn: arn:aws:ivs:us-east-1::stage/x\n",
	  "t.yaml:3:23: fleets[0].origin_stage_arn: must be an IVS stage ARN like "
	  "arn:aws:ivs:us-east-1:123456789012:stage/AbCd1234" },
	{ "ARN with trailing garbage",
	  "fleets:\n  - name: a\n    origin_stage_arn: \"" ARN "/x\"\n",
	  "t.yaml:3:23: fleets[0].origin_stage_arn: must be an IVS stage ARN like "
	  "arn:aws:ivs:us-east-1:123456789012:stage/AbCd1234" },
	{ "ARN other partition",
	  "fleets:\n  - name: a\n    origin_stage_arn: arn:aws-cn:ivs:cn-north-1:1:stage/x\n",
	  "t.yaml:3:23: fleets[0].origin_stage_arn: must be an IVS stage ARN like "
	  "arn:aws:ivs:us-east-1:123456789012:stage/AbCd1234" },

	/* ---- strings with rules ---- */
	{ "bad region", "aws:\n  region: US_EAST\n" FLEET,
	  "t.yaml:2:11: aws.region: must contain only a-z, 0-9 and '-' (e.g. us-east-1), or be \"\"" },
	{ "http endpoint not loopback", "aws:\n  endpoint: http://10.0.0.1:4566\n" FLEET,
	  "t.yaml:2:13: aws.endpoint: http:// is only allowed for loopback hosts (127.0.0.0/8, "
	  "localhost, [::1]); use https://" },
	{ "http endpoint lookalike", "aws:\n  endpoint: http://127.0.0.1.evil.com\n" FLEET,
	  "t.yaml:2:13: aws.endpoint: http:// is only allowed for loopback hosts (127.0.0.0/8, "
	  "localhost, [::1]); use https://" },
	{ "endpoint with path", "aws:\n  endpoint: https://example.com/x\n" FLEET,
	  "t.yaml:2:13: aws.endpoint: must be scheme://host[:port] without a path, query or user" },
	{ "endpoint ftp", "aws:\n  endpoint: ftp://example.com\n" FLEET,
	  "t.yaml:2:13: aws.endpoint: must start with https:// (or http:// for a loopback test "
	  "endpoint), or be \"\"" },
	{ "redis url scheme", "redis:\n  url: http://x:1/0\n" FLEET,
	  "t.yaml:2:8: redis.url: must be redis[s]://[user[:password]@]host[:port][/db] or "
	  "unix:///path.sock[?db=N]" },
	{ "redis bad port", "redis:\n  url: redis://h:70000/0\n" FLEET,
	  "t.yaml:2:8: redis.url: has an invalid host or port (redis://host:port/db)" },
	{ "redis bad db", "redis:\n  url: redis://h:6379/x\n" FLEET,
	  "t.yaml:2:8: redis.url: database must be a number between 0 and 65535 (redis://host:port/db)" },
	{ "redis tls", "redis:\n  url: rediss://u:pw@h:6379/2\n  tls:\n    server_name: h.example\n" FLEET,
	  NULL },
	{ "tls settings without rediss", "redis:\n  tls:\n    ca_file: /etc/ssl/certs/ca-certificates.crt\n" FLEET,
	  "t.yaml:3:5: redis.tls: TLS settings need a rediss:// url (the url is redis://, plain text)" },
	{ "tls with a unix socket", "redis:\n  url: unix:///r.sock\n  tls:\n    server_name: x\n" FLEET,
	  "t.yaml:4:5: redis.tls: TLS settings need a rediss:// url (the url is a unix socket)" },
	{ "tls missing CA file", "redis:\n  url: rediss://h:6379/0\n  tls:\n    ca_file: /nonexistent/ca.pem\n" FLEET,
	  "t.yaml:4:14: redis.tls.ca_file: cannot open the CA file /nonexistent/ca.pem: "
	  "No such file or directory" },
	{ "tls CA file not PEM", "redis:\n  url: rediss://h:6379/0\n  tls:\n    ca_file: /dev/null\n" FLEET,
	  "t.yaml:4:14: redis.tls.ca_file: cannot load the CA certificates from /dev/null: "
	  "no certificate or crl found" },
	{ "tls cert without key", "redis:\n  url: rediss://h:6379/0\n  tls:\n    cert_file: /x.pem\n" FLEET,
	  "t.yaml:4:16: redis.tls.cert_file: a client certificate needs both cert_file and key_file" },
	{ "tls bad server name", "redis:\n  url: rediss://h:6379/0\n  tls:\n    server_name: \"a b\"\n" FLEET,
	  "t.yaml:4:18: redis.tls.server_name: must be a DNS name or an IP address (or \"\" for the url's host)" },
	{ "tls unknown key", "redis:\n  url: rediss://h:6379/0\n  tls:\n    insecure: true\n" FLEET,
	  "t.yaml:4:5: redis.tls.insecure: unknown key (expected one of: ca_file, server_name, cert_file, key_file)" },
	{ "sentinel", "redis:\n  url: redis://h:1/3\n  sentinel:\n    master_name: m\n"
	  "    addresses: [\"10.0.0.5:26379\", \"[::1]:26380\", \"s.example:26381\"]\n" FLEET, NULL },
	{ "sentinel without addresses", "redis:\n  sentinel:\n    master_name: m\n" FLEET,
	  "t.yaml:3:5: redis.sentinel.addresses: master_name needs at least one sentinel address (\"host:port\")" },
	{ "sentinel address without port", "redis:\n  sentinel:\n    master_name: m\n    addresses: [\"10.0.0.5\"]\n" FLEET,
	  "t.yaml:4:17: redis.sentinel.addresses: must be host:port (e.g. \"10.0.0.5:26379\")" },
	{ "sentinel addresses not a list", "redis:\n  sentinel:\n    master_name: m\n    addresses: \"10.0.0.5:1\"\n" FLEET,
	  "t.yaml:4:16: redis.sentinel.addresses: expected a sequence of \"host:port\", got a quoted string" },
	{ "sentinel addresses without master", "redis:\n  sentinel:\n    addresses: [\"h:1\"]\n" FLEET,
	  "t.yaml:3:5: redis.sentinel: sentinel addresses or password_file without a master_name" },
	{ "sentinel with unix socket", "redis:\n  url: unix:///r.sock\n  sentinel:\n    master_name: m\n    addresses: [\"h:1\"]\n" FLEET,
	  "t.yaml:2:8: redis.url: Sentinel needs a redis:// or rediss:// url (its scheme, user and db are used)" },
	{ "sentinel missing password file", "redis:\n  sentinel:\n    master_name: m\n    addresses: [\"h:1\"]\n"
	  "    password_file: /nonexistent/s.pw\n" FLEET,
	  "t.yaml:5:20: redis.sentinel.password_file: cannot open /nonexistent/s.pw: No such file or directory" },
	{ "unix relative", "redis:\n  url: unix://redis.sock\n" FLEET,
	  "t.yaml:2:8: redis.url: unix socket URL must be unix:///absolute/path.sock[?db=N]" },
	{ "unix bad query", "redis:\n  url: unix:///r.sock?database=1\n" FLEET,
	  "t.yaml:2:8: redis.url: unix socket URL query must be ?db=N with N between 0 and 65535" },
	{ "password twice", "redis:\n  url: redis://:pw@h:1/0\n  password: other\n" FLEET,
	  "t.yaml:3:13: redis.password: give the Redis password only once (password_file, password "
	  "or in the url)" },
	{ "user without password", "redis:\n  url: redis://alice@h:1/0\n" FLEET,
	  "t.yaml:2:8: redis.url: a Redis user needs a password (in the url, password or password_file)" },
	{ "viewers without {arn}", "redis:\n  keys:\n    viewers: \"viewers\"\n" FLEET,
	  "t.yaml:3:14: redis.keys.viewers: must contain {arn}: every stage has its own viewer key" },
	{ "{arn} outside viewers", "redis:\n  keys:\n    publisher: \"p:{arn}\"\n" FLEET,
	  "t.yaml:3:16: redis.keys.publisher: {arn} is only allowed in the viewers template" },
	{ "unknown placeholder", "redis:\n  keys:\n    open_stages: \"o:{name}\"\n" FLEET,
	  "t.yaml:3:18: redis.keys.open_stages: unknown placeholder (only {fleet} and {arn} are replaced)" },
	{ "space in prefix", "redis:\n  key_prefix: \"ivs prod:\"\n" FLEET,
	  "t.yaml:2:15: redis.key_prefix: must not contain spaces or control characters" },
	{ "relative socket", "control:\n  socket: x.sock\n" FLEET,
	  "t.yaml:2:11: control.socket: must be an absolute path" },
	{ "socket too long",
	  "control:\n  socket: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" FLEET,
	  "t.yaml:2:11: control.socket: is longer than a Unix socket path may be (107 bytes)" },
	{ "bad admin group", "control:\n  admin_group: \"-wheel\"\n" FLEET,
	  "t.yaml:2:16: control.admin_group: must not start with '-'" },
	{ "missing password file", "redis:\n  password_file: /nonexistent/redis.pw\n" FLEET,
	  "t.yaml:2:18: redis.password_file: cannot open /nonexistent/redis.pw: No such file or directory" },
};

static void assert_loads(const char *name, const char *yaml, size_t len, struct config **out)
{
	struct config_errors errs;
	int rc = config_load_buffer("t.yaml", yaml, len, out, &errs);

	if (rc != 0) {
		for (size_t i = 0; i < errs.count; i++)
			print_message("  %s\n", errs.msgs[i]);
		config_errors_free(&errs);
		fail_msg("case \"%s\": expected to load, got %d", name, rc);
	}
	assert_int_equal(errs.count, 0);
	config_errors_free(&errs);
}

static void assert_rejects(const char *name, const char *yaml, size_t len, const char *want)
{
	struct config *config = NULL;
	struct config_errors errs;
	int rc = config_load_buffer("t.yaml", yaml, len, &config, &errs), found = 0;

	assert_null(config);
	if (rc == 0)
		fail_msg("case \"%s\": loaded, expected: %s", name, want);
	assert_true(errs.count > 0);
	for (size_t i = 0; i < errs.count; i++)
		if (strcmp(errs.msgs[i], want) == 0)
			found = 1;
	if (!found) {
		print_message("case \"%s\": want  %s\n", name, want);
		for (size_t i = 0; i < errs.count; i++)
			print_message("            got   %s\n", errs.msgs[i]);
		config_errors_free(&errs);
		fail_msg("case \"%s\": expected error not reported", name);
	}
	config_errors_free(&errs);
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct config_case *c = &cases[i];
		struct config *config = NULL;
		if (c->yaml == NULL)
			continue;  /* built by a dedicated test */
		if (c->want == NULL && (strcmp(c->name, "bare alias") == 0 || strcmp(c->name, "syntax error") == 0))
			continue;
		if (c->want == NULL) {
			assert_loads(c->name, c->yaml, strlen(c->yaml), &config);
			config_free(config);
		} else {
			assert_rejects(c->name, c->yaml, strlen(c->yaml), c->want);
		}
	}
}

/* libyaml's own errors keep its wording; we pin the position and the prefix. */
static void test_yaml_syntax_errors(void **state)
{
	static const struct {
		const char *yaml;
		const char *prefix;
	} syntax[] = {
		{ "fleets: *x\n", "t.yaml:1:9: " },
		{ "aws:\n  region: [us-east-1\n" FLEET, "t.yaml:3:7: " },
		{ "aws:\n\tregion: x\n", "t.yaml:2:1: " },
		{ "a: b: c\n", "t.yaml:1:5: " },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++) {
		struct config *config = NULL;
		struct config_errors errs;
		assert_int_not_equal(config_load_buffer("t.yaml", syntax[i].yaml, strlen(syntax[i].yaml),
							&config, &errs), 0);
		assert_null(config);
		assert_int_equal(errs.count, 1);
		if (strncmp(errs.msgs[0], syntax[i].prefix, strlen(syntax[i].prefix)) != 0)
			fail_msg("case %zu: got \"%s\", want prefix \"%s\"", i, errs.msgs[0], syntax[i].prefix);
		config_errors_free(&errs);
	}
}

static void test_defaults(void **state)
{
	struct config *c = NULL;
	const struct config_fleet *f;
	(void)state;

	assert_loads("defaults", FLEET, strlen(FLEET), &c);
	assert_string_equal(c->aws.region, "");
	assert_string_equal(c->aws.endpoint, "");
	assert_true(c->aws.max_tps == 4);
	assert_true(c->aws.resync_share == 0.5);
	assert_true(c->aws.timeout_ms == 10000 && c->aws.connect_timeout_ms == 3000);
	assert_string_equal(c->redis.host, "127.0.0.1");
	assert_int_equal(c->redis.port, 6379);
	assert_int_equal(c->redis.db, 0);
	assert_string_equal(c->redis.unix_path, "");
	assert_string_equal(c->redis.password, "");
	assert_string_equal(c->redis.key_prefix, "ivs:prod:");
	assert_string_equal(c->redis.wake_channel, "autoscaler:wake");
	assert_true(c->redis.timeout_ms == 2000);
	assert_string_equal(c->control.socket, "/run/ivs-autoscaler/control.sock");
	assert_int_equal(c->control.max_clients, 64);
	assert_true(c->control.idle_timeout_ms == 60000);
	assert_true(c->reconcile.resync_interval_ms == 15000);
	assert_true(c->reconcile.backoff_initial_ms == 1000 && c->reconcile.backoff_max_ms == 300000);
	assert_true(c->reconcile.stop_timeout_ms == 20000);
	assert_string_equal(c->controller.owner, "");
	assert_true(c->controller.instance[0] != '\0');
	assert_true(strspn(c->controller.instance, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789_-") == strlen(c->controller.instance));
	assert_false(c->ha.enabled);
	assert_string_equal(c->ha.lease_key, "autoscaler:leader");
	assert_true(c->ha.lease_duration_ms == 15000 && c->ha.renew_deadline_ms == 10000 &&
		    c->ha.retry_period_ms == 2000);
	assert_int_equal(c->n_fleets, 1);
	f = config_find_fleet(c, "main");
	assert_non_null(f);
	assert_null(config_find_fleet(c, "other"));
	assert_string_equal(f->origin_stage_arn, ARN);
	assert_int_equal(f->viewers_per_stage, 10000);
	assert_true(f->target_utilization == 0.8);
	assert_int_equal(f->min_replicas, 0);
	assert_int_equal(f->max_replicas, 5);
	assert_true(f->scale_down_delay_ms == 300000 && f->drain_timeout_ms == 600000);
	assert_true(f->reconnect_window_ms == 60000);
	assert_true(f->drain_min_ms == 30000);
	assert_int_equal(f->n_tags, 0);
	assert_string_equal(f->keys.open_stages, "autoscaler:fleet:{fleet}:stages");
	assert_string_equal(f->redis_keys.open_stages, "ivs:prod:autoscaler:fleet:main:stages");
	assert_string_equal(f->redis_keys.publisher, "ivs:prod:publisher:info");
	assert_string_equal(f->redis_keys.desired_stages, "ivs:prod:desired_stages");
	assert_string_equal(f->redis_keys.viewers, "ivs:prod:stage:{arn}:viewers");
	config_free(c);
}

static void test_redis_url_parts(void **state)
{
	static const char yaml[] =
		"redis:\n  url: \"redis://al%40ice:p%3Ass@[::1]:6390/7\"\n" FLEET;
	static const char yaml_unix[] = "redis:\n  url: unix:///run/r.sock?db=3\n" FLEET;
	struct config *c = NULL;
	(void)state;

	assert_loads("url", yaml, strlen(yaml), &c);
	assert_string_equal(c->redis.user, "al@ice");
	assert_string_equal(c->redis.password, "p:ss");
	assert_string_equal(c->redis.host, "::1");
	assert_int_equal(c->redis.port, 6390);
	assert_int_equal(c->redis.db, 7);
	assert_int_equal(c->redis.password_source, CONFIG_SECRET_URL);
	config_free(c);

	assert_loads("unix", yaml_unix, strlen(yaml_unix), &c);
	assert_string_equal(c->redis.unix_path, "/run/r.sock");
	assert_string_equal(c->redis.host, "");
	assert_int_equal(c->redis.db, 3);
	config_free(c);
}

static void test_many_tags(void **state)
{
	char yaml[8192];
	size_t used;
	(void)state;

	used = (size_t)snprintf(yaml, sizeof(yaml), FLEET "    tags:\n");
	for (int i = 0; i < 46; i++)
		used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "      t%d: v\n", i);
	assert_rejects("too many tags", yaml, used,
		       "t.yaml:5:7: fleets[0].tags: at most 45 tags are allowed (IVS allows 50, 5 are ours), got 46");

	used = (size_t)snprintf(yaml, sizeof(yaml), FLEET "    tags:\n      k: ");
	for (int i = 0; i < 257; i++)
		yaml[used++] = 'v';
	yaml[used++] = '\n';
	yaml[used] = '\0';
	assert_rejects("tag value too long", yaml, used,
		       "t.yaml:5:10: fleets[0].tags.k: tag values must be at most 256 characters of "
		       "letters, digits, spaces and _ . : / = + - @");
}

static void test_error_cap_and_size(void **state)
{
	char *big;
	size_t used = 0;
	struct config *c = NULL;
	struct config_errors errs;
	(void)state;

	big = malloc(CONFIG_MAX_BYTES + 64);
	assert_non_null(big);
	/* 30 unknown keys: 20 reported, the rest counted as truncated. */
	used += (size_t)snprintf(big, 64, "aws:\n");
	for (int i = 0; i < 30; i++)
		used += (size_t)snprintf(big + used, 64, "  k%d: 1\n", i);
	assert_int_equal(config_load_buffer("t.yaml", big, used, &c, &errs), -EINVAL);
	assert_int_equal(errs.count, CONFIG_ERRORS_MAX);
	assert_true(errs.truncated);
	assert_string_equal(errs.msgs[0], "t.yaml:2:3: aws.k0: unknown key (expected one of: region, "
			    "endpoint, profile, credentials_file, max_tps, resync_share, timeout, "
			    "connect_timeout)");
	config_errors_free(&errs);

	/* A flat list of 30000 scalars stays under 1 MiB but is refused before it costs memory. */
	used = (size_t)snprintf(big, 64, "aws: [");
	for (int i = 0; i < 30000; i++)
		used += (size_t)snprintf(big + used, 8, "1,");
	used += (size_t)snprintf(big + used, 8, "1]\n");
	assert_int_equal(config_load_buffer("t.yaml", big, used, &c, &errs), -EINVAL);
	assert_int_equal(errs.count, 1);
	assert_string_equal(errs.msgs[0],
			    "t.yaml:1:40001: too many YAML nodes (more than 20000) for a configuration");
	config_errors_free(&errs);

	memset(big, '#', CONFIG_MAX_BYTES + 1);
	assert_int_equal(config_load_buffer("t.yaml", big, CONFIG_MAX_BYTES + 1, &c, &errs), -EFBIG);
	assert_int_equal(errs.count, 1);
	assert_string_equal(errs.msgs[0], "t.yaml:1:1: the configuration is larger than 1 MiB");
	config_errors_free(&errs);
	free(big);
}

static void test_expand_key(void **state)
{
	char out[64];
	char small[8];
	(void)state;

	assert_int_equal(config_expand_key("a:{fleet}:{arn}:{fleet}", "f", "x", out, sizeof(out)), 7);
	assert_string_equal(out, "a:f:x:f");
	assert_int_equal(config_expand_key("plain", NULL, NULL, out, sizeof(out)), 5);
	assert_string_equal(out, "plain");
	assert_int_equal(config_expand_key("{arn}", "f", NULL, out, sizeof(out)), -EINVAL);
	assert_int_equal(config_expand_key("{fleet}", NULL, "a", out, sizeof(out)), -EINVAL);
	assert_int_equal(config_expand_key("{fleet}", "12345678", NULL, small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(config_expand_key("{fleet}", "1234567", NULL, small, sizeof(small)), 7);
	assert_int_equal(config_expand_key("{fle", "x", NULL, out, sizeof(out)), 4);
	assert_string_equal(out, "{fle");
}

/* ---- files: secrets, example configs --------------------------------------------------- */

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_tmpdir(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *data, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(data, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Loads path with stderr captured; returns rc, fills logged. */
static int load_capture(const char *path, struct config **c, struct config_errors *errs,
			char *logged, size_t loglen)
{
	FILE *cap = tmpfile();
	int saved = dup(STDERR_FILENO), rc;
	size_t n;

	assert_non_null(cap);
	fflush(stderr);
	assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
	unsetenv("JOURNAL_STREAM");
	log_init("test_config", 0);
	rc = config_load_file(path, c, errs);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(cap);
	n = fread(logged, 1, loglen - 1, cap);
	logged[n] = '\0';
	fclose(cap);
	return rc;
}

static char *print_to_string(const struct config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	config_print(c, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_password_file(void **state)
{
	char cfg[256], pw[256], yaml[512], logged[2048];
	struct config *c = NULL;
	struct config_errors errs;
	char *printed;
	(void)state;

	unsetenv("CREDENTIALS_DIRECTORY");
	snprintf(pw, sizeof(pw), "%s/redis.pw", tmpdir);
	snprintf(cfg, sizeof(cfg), "%s/config.yaml", tmpdir);
	write_file(pw, "Sup3rSecretRedis\n", 0600);
	/* Relative: next to the config file. */
	snprintf(yaml, sizeof(yaml), "redis:\n  password_file: redis.pw\n" FLEET);
	write_file(cfg, yaml, 0644);
	assert_int_equal(load_capture(cfg, &c, &errs, logged, sizeof(logged)), 0);
	assert_string_equal(c->redis.password, "Sup3rSecretRedis");
	assert_string_equal(c->redis.password_file, pw);
	assert_string_equal(logged, "");   /* 0600: no warning */
	printed = print_to_string(c);
	assert_null(strstr(printed, "Sup3rSecretRedis"));
	assert_non_null(strstr(printed, pw));
	free(printed);
	config_free(c);
	config_errors_free(&errs);

	/* Group-readable: loads, with a warning that names the file and not the secret. */
	assert_int_equal(chmod(pw, 0640), 0);
	assert_int_equal(load_capture(cfg, &c, &errs, logged, sizeof(logged)), 0);
	assert_non_null(strstr(logged, "<4>"));
	assert_non_null(strstr(logged, "readable by group or others"));
	assert_non_null(strstr(logged, pw));
	assert_null(strstr(logged, "Sup3rSecretRedis"));
	config_free(c);
	config_errors_free(&errs);

	/* $CREDENTIALS_DIRECTORY wins for relative paths. */
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", "/nonexistent-creds", 1), 0);
	assert_int_not_equal(load_capture(cfg, &c, &errs, logged, sizeof(logged)), 0);
	assert_int_equal(errs.count, 1);
	assert_string_equal(errs.msgs[0] + strlen(cfg),
			    ":2:18: redis.password_file: cannot open /nonexistent-creds/redis.pw: "
			    "No such file or directory");
	config_errors_free(&errs);
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", tmpdir, 1), 0);
	assert_int_equal(load_capture(cfg, &c, &errs, logged, sizeof(logged)), 0);
	config_free(c);
	config_errors_free(&errs);
	unsetenv("CREDENTIALS_DIRECTORY");

	/* An empty secret file is a mistake, not "no password". */
	write_file(pw, "\n", 0600);
	assert_int_not_equal(load_capture(cfg, &c, &errs, logged, sizeof(logged)), 0);
	assert_non_null(strstr(errs.msgs[0], "redis.password_file:"));
	assert_non_null(strstr(errs.msgs[0], "is empty"));
	config_errors_free(&errs);
}

static void test_print_masks_secrets(void **state)
{
	static const char *const yamls[] = {
		"redis:\n  url: \"redis://bob:Hunter2Hunter2@10.0.0.5:6379/2\"\n" FLEET,
		"redis:\n  password: Hunter2Hunter2\n" FLEET,
	};
	(void)state;

	for (size_t i = 0; i < sizeof(yamls) / sizeof(yamls[0]); i++) {
		struct config *c = NULL;
		char *printed;
		assert_loads("secret", yamls[i], strlen(yamls[i]), &c);
		assert_string_equal(c->redis.password, "Hunter2Hunter2");
		printed = print_to_string(c);
		assert_null(strstr(printed, "Hunter2"));
		assert_non_null(strstr(printed, "***"));
		if (i == 0)
			assert_non_null(strstr(printed, "url: \"redis://bob:***@10.0.0.5:6379/2\""));
		else
			assert_non_null(strstr(printed, "password: \"***\""));
		free(printed);
		config_free(c);
	}
}

/* What config_print writes loads back to the same effective configuration. */
static void test_print_round_trip(void **state)
{
	static const char yaml[] =
		"aws:\n  region: eu-west-1\n  max_tps: 2.5\n  resync_share: 0.25\n  timeout: 1m30s\n"
		"redis:\n  url: unix:///run/r.sock?db=1\n  keys: {publisher: \"p:{fleet}\", desired_stages: \"d:{fleet}\"}\n"
		"control: {admin_group: ivs, max_clients: 8}\n"
		"fleets:\n  - name: a\n    origin_stage_arn: " ARN "\n    tags: {team: \"media ops\", \"x:y\": \"\"}\n"
		"    target_utilization: 0.75\n    reconnect_window: 0s\n"
		"  - name: b\n    origin_stage_arn: " ARN2 "\n    keys: {open_stages: \"open:b\"}\n";
	struct config *c = NULL, *again = NULL;
	char *first, *second;
	(void)state;

	assert_loads("round trip", yaml, strlen(yaml), &c);
	first = print_to_string(c);
	assert_loads("printed", first, strlen(first), &again);
	second = print_to_string(again);
	/* Only the comment line (the source name) differs. */
	assert_string_equal(strchr(first, '\n'), strchr(second, '\n'));
	assert_int_equal(again->n_fleets, 2);
	assert_int_equal(again->fleets[0].n_tags, 2);
	assert_string_equal(again->fleets[1].redis_keys.open_stages, "ivs:prod:open:b");
	assert_true(again->aws.timeout_ms == 90000);
	free(first);
	free(second);
	config_free(c);
	config_free(again);
}

static void test_example_configs_load(void **state)
{
	static const char *const files[] = { "etc/config.yaml", "etc/demo.yaml" };
	(void)state;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct config *c = NULL;
		struct config_errors errs;
		int rc = config_load_file(files[i], &c, &errs);
		for (size_t j = 0; j < errs.count; j++)
			print_message("  %s\n", errs.msgs[j]);
		assert_int_equal(rc, 0);
		assert_non_null(config_find_fleet(c, "main"));
		if (i == 1) {
			assert_string_equal(c->aws.endpoint, "http://127.0.0.1:4566");
			assert_string_equal(c->redis.key_prefix, "ivs:demo:");
			assert_true(c->reconcile.resync_interval_ms == 5000);
			assert_true(c->fleets[0].scale_down_delay_ms == 30000);
			assert_true(c->fleets[0].drain_timeout_ms == 60000);
			assert_string_equal(c->control.socket, "/tmp/ivs-autoscaler-demo.sock");
		}
		config_free(c);
		config_errors_free(&errs);
	}
}

static void test_load_file_errors(void **state)
{
	struct config *c = NULL;
	struct config_errors errs;
	(void)state;

	assert_int_equal(config_load_file("/nonexistent/config.yaml", &c, &errs), -ENOENT);
	assert_int_equal(errs.count, 1);
	assert_string_equal(errs.msgs[0], "/nonexistent/config.yaml: cannot open: No such file or directory");
	config_errors_free(&errs);
	assert_int_equal(config_load_file(tmpdir, &c, &errs), -EINVAL);
	config_errors_free(&errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_yaml_syntax_errors),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_redis_url_parts),
		cmocka_unit_test(test_many_tags),
		cmocka_unit_test(test_error_cap_and_size),
		cmocka_unit_test(test_expand_key),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_print_masks_secrets),
		cmocka_unit_test(test_print_round_trip),
		cmocka_unit_test(test_example_configs_load),
		cmocka_unit_test(test_load_file_errors),
	};
	return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
