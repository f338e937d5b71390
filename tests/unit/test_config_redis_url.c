/*
 * test_config_redis_url.c — the redis.url parser on its own (config_redis_url.c): a table of
 * URLs with the parts each must give, and of malformed ones with the reason each must give,
 * which never repeats the URL (it may hold a password).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config_internal.h"

struct url_case {
	const char *url;
	bool tls;
	const char *host, *unix_path, *user, *password;
	unsigned port, db;
	enum config_secret_source src;
};

static const struct url_case good[] = {
	{ "redis://127.0.0.1:6379/0", false, "127.0.0.1", "", "", "", 6379, 0, CONFIG_SECRET_NONE },
	{ "redis://cache.internal", false, "cache.internal", "", "", "", 6379, 0, CONFIG_SECRET_NONE },
	{ "redis://h/5", false, "h", "", "", "", 6379, 5, CONFIG_SECRET_NONE },
	{ "redis://h:1/65535", false, "h", "", "", "", 1, 65535, CONFIG_SECRET_NONE },
	{ "rediss://h.example:6380/2", true, "h.example", "", "", "", 6380, 2, CONFIG_SECRET_NONE },
	{ "redis://[::1]:6390/7", false, "::1", "", "", "", 6390, 7, CONFIG_SECRET_NONE },
	{ "redis://:pw@h:1/0", false, "h", "", "", "pw", 1, 0, CONFIG_SECRET_URL },
	{ "redis://alice:s3cret@h:1/0", false, "h", "", "alice", "s3cret", 1, 0, CONFIG_SECRET_URL },
	{ "redis://al%40ice:p%3As%2fs@h:1/0", false, "h", "", "al@ice", "p:s/s", 1, 0,
	  CONFIG_SECRET_URL },
	/* A user with an empty password: no AUTH password from the URL. */
	{ "redis://alice:@h:1/0", false, "h", "", "alice", "", 1, 0, CONFIG_SECRET_NONE },
	{ "redis://alice@h:1/0", false, "h", "", "alice", "", 1, 0, CONFIG_SECRET_NONE },
	/* The last '@' before the path ends the user information. */
	{ "redis://u:p@ss@h:1/0", false, "h", "", "u", "p@ss", 1, 0, CONFIG_SECRET_URL },
	{ "unix:///run/redis/redis.sock", false, "", "/run/redis/redis.sock", "", "", 0, 0,
	  CONFIG_SECRET_NONE },
	{ "unix:///run/r.sock?db=3", false, "", "/run/r.sock", "", "", 0, 3, CONFIG_SECRET_NONE },
};

static const struct {
	const char *url;
	const char *why;
} bad[] = {
	{ "http://h:6379/0",
	  "must be redis[s]://[user[:password]@]host[:port][/db] or unix:///path.sock[?db=N]" },
	{ "", "must be redis[s]://[user[:password]@]host[:port][/db] or unix:///path.sock[?db=N]" },
	{ "REDIS://h", "must be redis[s]://[user[:password]@]host[:port][/db] or unix:///path.sock[?db=N]" },
	{ "redis://", "has an invalid host or port (redis://host:port/db)" },
	{ "redis://h:0/0", "has an invalid host or port (redis://host:port/db)" },
	{ "redis://h:70000/0", "has an invalid host or port (redis://host:port/db)" },
	{ "redis://h:/0", "has an invalid host or port (redis://host:port/db)" },
	{ "redis://h:x/0", "has an invalid host or port (redis://host:port/db)" },
	{ "redis://::1:6379/0", "has an invalid host or port (redis://host:port/db)" },
	{ "redis://[nothex]:1/0", "has an invalid host or port (redis://host:port/db)" },
	{ "redis://h_x:1/0", "has an invalid host or port (redis://host:port/db)" },
	{ "redis://h:1/x", "database must be a number between 0 and 65535 (redis://host:port/db)" },
	{ "redis://h:1/65536", "database must be a number between 0 and 65535 (redis://host:port/db)" },
	{ "redis://h:1/-1", "database must be a number between 0 and 65535 (redis://host:port/db)" },
	{ "redis://al%4@h:1/0", "user name has a malformed %-escape" },
	{ "redis://%00:pw@h:1/0", "user name has a malformed %-escape" },
	{ "redis://u:hunter%zz@h:1/0", "password has a malformed %-escape" },
	{ "redis://u:hunter%2@h:1/0", "password has a malformed %-escape" },
	{ "redis://u:hun%00ter@h:1/0", "password has a malformed %-escape" },
	{ "unix://redis.sock", "unix socket URL must be unix:///absolute/path.sock[?db=N]" },
	{ "unix:///r.sock?database=1", "unix socket URL query must be ?db=N with N between 0 and 65535" },
	{ "unix:///r.sock?db=65536", "unix socket URL query must be ?db=N with N between 0 and 65535" },
	{ "unix:///r\tsock", "unix socket path must not contain control characters" },
};

static void redis_free(struct config_redis *r)
{
	free(r->host);
	free(r->unix_path);
	free(r->user);
	free(r->password);
}

static void test_good_urls(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const struct url_case *c = &good[i];
		struct config_redis r = { 0 };
		enum config_secret_source src = CONFIG_SECRET_INLINE;
		const char *why = config_parse_redis_url(&r, c->url, &src);

		if (why != NULL)
			fail_msg("%s: %s", c->url, why);
		assert_int_equal(r.tls, c->tls);
		assert_string_equal(r.host, c->host);
		assert_string_equal(r.unix_path != NULL ? r.unix_path : "", c->unix_path);
		assert_string_equal(r.user != NULL ? r.user : "", c->user);
		assert_string_equal(r.password != NULL ? r.password : "", c->password);
		assert_int_equal(r.port, c->port);
		assert_int_equal(r.db, c->db);
		assert_int_equal(src, c->src);
		redis_free(&r);
	}
}

static void test_bad_urls(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config_redis r = { 0 };
		enum config_secret_source src;
		const char *why = config_parse_redis_url(&r, bad[i].url, &src);

		if (why == NULL)
			fail_msg("%s: accepted", bad[i].url);
		if (strcmp(why, bad[i].why) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].url, why, bad[i].why);
		assert_null(strstr(why, "hunter"));
		redis_free(&r);
	}
}

/* The parser fills only what the URL says: a second URL replaces the first one's parts. */
static void test_reparse_replaces(void **state)
{
	struct config_redis r = { 0 };
	enum config_secret_source src;
	(void)state;

	assert_null(config_parse_redis_url(&r, "unix:///run/r.sock?db=4", &src));
	assert_null(config_parse_redis_url(&r, "rediss://bob:pw@h:7/1", &src));
	assert_true(r.tls);
	assert_string_equal(r.unix_path, "");
	assert_string_equal(r.host, "h");
	assert_string_equal(r.user, "bob");
	assert_string_equal(r.password, "pw");
	assert_int_equal(r.db, 1);
	assert_null(config_parse_redis_url(&r, "unix:///run/r.sock", &src));
	assert_false(r.tls);
	assert_string_equal(r.host, "");
	assert_int_equal(r.port, 0);
	assert_int_equal(r.db, 0);
	redis_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_urls),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_reparse_replaces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
