/*
 * test_creds.c — the credentials chain: each source, precedence, profiles, malformed files and
 * JSON, IMDSv2 without v1 fallback, and background refresh that never blocks get().
 *
 * Fakes: a loopback HTTP/1.1 server in a thread (127.0.0.1, port 0) that serves the IMDS and
 * container paths and records every request; credential_process scripts written to a temp dir.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "creds.h"
#include "creds_source.h"

/* ---- fake HTTP server ---- */

struct route {
	const char *method, *path;
	int status;
	const char *body;
};

struct fake_server {
	int fd, port, stop;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct route routes[8];
	size_t nroutes;
	int gate_closed, held;   /* held: requests waiting at the closed gate */
	char log[32768];
	size_t nrequests;
};

static struct fake_server srv;

static void serve_one(int c)
{
	char req[8192], method[16] = "", path[512] = "", resp[4096];
	size_t len = 0;
	const struct route *rt = NULL;

	/* Headers, then the body when there is a Content-Length (STS form POSTs): closing with
	 * unread bytes would reset the connection under the client. */
	while (len < sizeof(req) - 1) {
		ssize_t k = recv(c, req + len, sizeof(req) - 1 - len, 0);
		const char *end, *cl;
		if (k <= 0)
			break;
		len += (size_t)k;
		req[len] = '\0';
		if ((end = strstr(req, "\r\n\r\n")) == NULL)
			continue;
		cl = strcasestr(req, "\r\nContent-Length:");
		if (cl == NULL || cl > end ||
		    len >= (size_t)(end + 4 - req) + strtoul(cl + 17, NULL, 10))
			break;
	}
	req[len] = '\0';
	if (sscanf(req, "%15s %511s", method, path) != 2)
		return;
	pthread_mutex_lock(&srv.lock);
	size_t used = strlen(srv.log);
	snprintf(srv.log + used, sizeof(srv.log) - used, "%s\n", req);
	srv.nrequests++;
	srv.held++;
	pthread_cond_broadcast(&srv.cond);
	while (srv.gate_closed && !srv.stop)
		pthread_cond_wait(&srv.cond, &srv.lock);
	srv.held--;
	for (size_t i = 0; i < srv.nroutes; i++)
		if (strcmp(srv.routes[i].method, method) == 0 && strcmp(srv.routes[i].path, path) == 0)
			rt = &srv.routes[i];
	int n = rt ? snprintf(resp, sizeof(resp),
			      "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			      rt->status, strlen(rt->body), rt->body) :
		     snprintf(resp, sizeof(resp),
			      "HTTP/1.1 404 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	pthread_mutex_unlock(&srv.lock);
	if (n > 0 && (size_t)n < sizeof(resp))
		(void)!send(c, resp, (size_t)n, MSG_NOSIGNAL);
}

static void *server_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pfd = { srv.fd, POLLIN, 0 };
		int stop;
		pthread_mutex_lock(&srv.lock);
		stop = srv.stop;
		pthread_mutex_unlock(&srv.lock);
		if (stop)
			break;
		/* The timeout only bounds how long stop takes to be noticed. */
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		int c = accept(srv.fd, NULL, NULL);
		if (c < 0)
			continue;
		serve_one(c);
		close(c);
	}
	return NULL;
}

static void server_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);

	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.lock, NULL);
	pthread_cond_init(&srv.cond, NULL);
	srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(srv.fd >= 0);
	assert_int_equal(bind(srv.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(srv.fd, 16), 0);
	assert_int_equal(getsockname(srv.fd, (struct sockaddr *)&a, &alen), 0);
	srv.port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&srv.thread, NULL, server_main, NULL), 0);
}

static void server_stop(void)
{
	pthread_mutex_lock(&srv.lock);
	srv.stop = 1;
	pthread_cond_broadcast(&srv.cond);
	pthread_mutex_unlock(&srv.lock);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	pthread_cond_destroy(&srv.cond);
	pthread_mutex_destroy(&srv.lock);
}

static void route(const char *method, const char *path, int status, const char *body)
{
	pthread_mutex_lock(&srv.lock);
	for (size_t i = 0; i < srv.nroutes; i++)
		if (strcmp(srv.routes[i].method, method) == 0 && strcmp(srv.routes[i].path, path) == 0) {
			srv.routes[i].status = status;
			srv.routes[i].body = body;
			pthread_mutex_unlock(&srv.lock);
			return;
		}
	srv.routes[srv.nroutes++] = (struct route){ method, path, status, body };
	pthread_mutex_unlock(&srv.lock);
}

static int log_contains(const char *needle)
{
	int r;

	pthread_mutex_lock(&srv.lock);
	r = strcasestr(srv.log, needle) != NULL;
	pthread_mutex_unlock(&srv.lock);
	return r;
}

/* ---- environment and files ---- */

static char tmpdir[64];
static time_t fake_now;

static time_t get_fake_now(void)
{
	return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

static void set_fake_now(time_t t)
{
	__atomic_store_n(&fake_now, t, __ATOMIC_SEQ_CST);
}

static const char *const env_vars[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
	"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AWS_EC2_METADATA_DISABLED", "AWS_REGION", "AWS_DEFAULT_REGION", "HOME",
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
	"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL",
};
static char *saved_env[sizeof(env_vars) / sizeof(env_vars[0])];

static void write_file(const char *name, const char *text, int mode)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
}

static void set_path_env(const char *var, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	setenv(var, path, 1);
}

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
		const char *v = getenv(env_vars[i]);
		saved_env[i] = v ? strdup(v) : NULL;
		unsetenv(env_vars[i]);
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_creds.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	setenv("HOME", tmpdir, 1); /* no ~/.aws of the person running the tests */
	set_path_env("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	set_path_env("AWS_CONFIG_FILE", "config");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	set_fake_now(1800000000); /* 2027-01-15T08:00:00Z */
	server_start();
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	server_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)!system(cmd);
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
		if (saved_env[i] != NULL)
			setenv(env_vars[i], saved_env[i], 1);
		else
			unsetenv(env_vars[i]);
		free(saved_env[i]);
		saved_env[i] = NULL;
	}
	return 0;
}

static struct creds_provider *new_provider(const char *profile, const char *cred_file, char *err,
					   size_t n)
{
	struct creds_options o = { .profile = profile, .credentials_file = cred_file,
				   .now = get_fake_now };
	return creds_provider_new(&o, err, n);
}

/* Expect success from source with the given key id. */
static void expect_source(const char *profile, const char *source, const char *akid)
{
	char err[1024];
	struct creds_provider *p = new_provider(profile, NULL, err, sizeof(err));
	struct aws_credentials c;

	if (p == NULL)
		fail_msg("expected %s, got error: %s", source, err);
	assert_string_equal(creds_provider_source(p), source);
	assert_int_equal(creds_provider_get(p, &c), 0);
	assert_string_equal(c.access_key_id, akid);
	aws_credentials_clear(&c);
	creds_provider_free(p);
}

static void expect_error(const char *profile, const char *substring)
{
	char err[1024];
	struct creds_provider *p = new_provider(profile, NULL, err, sizeof(err));

	if (p != NULL) {
		const char *src = creds_provider_source(p);
		creds_provider_free(p);
		fail_msg("expected an error containing \"%s\", got credentials from %s", substring, src);
	}
	if (strstr(err, substring) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, substring);
	assert_null(strchr(err, '\n'));
}

/* ---- tests ---- */

static void test_environment(void **state)
{
	char err[512];
	struct creds_provider *p;
	struct aws_credentials c;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
	setenv("AWS_SESSION_TOKEN", "token-env", 1);
	p = new_provider(NULL, NULL, err, sizeof(err));
	assert_non_null(p);
	assert_string_equal(creds_provider_source(p), "environment");
	assert_int_equal(creds_provider_get(p, &c), 0);
	assert_string_equal(c.secret_access_key, "secret-env");
	assert_string_equal(c.session_token, "token-env");
	assert_int_equal(c.expiration, 0);
	aws_credentials_clear(&c);
	creds_provider_free(p);

	unsetenv("AWS_SECRET_ACCESS_KEY");
	expect_error(NULL, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
	setenv("AWS_SECRET_ACCESS_KEY", "", 1); /* empty = unset */
	expect_error(NULL, "AWS_SECRET_ACCESS_KEY is not");
}

static void test_nothing_found_names_every_source(void **state)
{
	(void)state;
	expect_error(NULL, "no AWS credentials: environment (AWS_ACCESS_KEY_ID unset), web identity "
			   "(AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN unset), shared "
			   "files (no profile \"default\" in ");
	expect_error(NULL, "container (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI unset; "
			   "EKS Pod Identity sets _FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), "
			   "IMDS (disabled by AWS_EC2_METADATA_DISABLED)");
}

static void test_shared_files_and_profiles(void **state)
{
	(void)state;
	write_file("credentials", "[default]\naws_access_key_id = AKIADEFAULT\n"
				  "aws_secret_access_key = s1\n"
				  "[both]\naws_access_key_id = AKIACREDFILE\naws_secret_access_key = s2\n",
		   0600);
	write_file("config", "[default]\nregion = us-east-1\n"
			     "[profile prod]\naws_access_key_id = AKIAPROD\naws_secret_access_key = s3\n"
			     "[profile both]\naws_access_key_id = AKIACONFIG\naws_secret_access_key = s4\n"
			     "[staging]\naws_access_key_id = AKIANOTAPROFILE\naws_secret_access_key = s\n",
		   0600);
	write_file("other-credentials", "[default]\naws_access_key_id = AKIAOTHER\n"
					"aws_secret_access_key = s5\n", 0600);
	expect_source(NULL, "shared-files", "AKIADEFAULT");
	expect_source("prod", "shared-files", "AKIAPROD");
	expect_source("both", "shared-files", "AKIACREDFILE"); /* credentials file wins */
	setenv("AWS_PROFILE", "prod", 1);
	expect_source(NULL, "shared-files", "AKIAPROD");
	expect_source("both", "shared-files", "AKIACREDFILE"); /* configured beats AWS_PROFILE */
	unsetenv("AWS_PROFILE");
	/* [staging] in config is not a profile: it needs the "profile " prefix */
	expect_error("staging", "profile \"staging\" is in neither");

	char err[512], path[256];
	struct creds_provider *p;
	struct aws_credentials c;
	snprintf(path, sizeof(path), "%s/other-credentials", tmpdir);
	p = new_provider(NULL, path, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(creds_provider_get(p, &c), 0);
	assert_string_equal(c.access_key_id, "AKIAOTHER");
	aws_credentials_clear(&c);
	creds_provider_free(p);

	write_file("credentials", "[half]\naws_access_key_id = AKIAHALF\n", 0600);
	expect_error("half", "profile \"half\" has aws_access_key_id but not aws_secret_access_key");
	write_file("credentials", "[role]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = d\n",
		   0600);
	expect_error("role", "profile \"d\" (source_profile of \"role\") is in neither");
	write_file("config", "[profile sso]\nsso_session = corp\n", 0600);
	expect_error("sso", "uses SSO, which this daemon does not support");
}

static void test_malformed_files(void **state)
{
	static const struct {
		const char *file, *text, *err;
	} cases[] = {
		{ "credentials", "[default]\naws_access_key_id AKIA\n", "credentials: line 2: expected 'name = value'" },
		{ "credentials", "[default\n", "credentials: line 1: unterminated section header" },
		{ "config", "region = x\n", "config: line 1: property outside a [section]" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file("credentials", "", 0600);
		write_file("config", "", 0600);
		write_file(cases[i].file, cases[i].text, 0600);
		expect_error(NULL, cases[i].err);
	}
	/* a huge line */
	size_t n = 20000;
	char *big = malloc(n + 32);
	assert_non_null(big);
	memcpy(big, "[default]\nk = ", 14);
	memset(big + 14, 'x', n);
	big[14 + n] = '\0';
	write_file("credentials", big, 0600);
	free(big);
	expect_error(NULL, "credentials: line 2: line too long");
}

static void test_credential_process(void **state)
{
	char cfg[1024];

	(void)state;
	write_file("ok.sh", "#!/bin/sh\n[ \"$1\" = 'two words' ] || exit 3\n"
			    "echo '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\", "
			    "\"SecretAccessKey\": \"sp\", \"SessionToken\": \"tp\", "
			    "\"Expiration\": \"2027-01-15T09:00:00Z\"}'\n", 0700);
	write_file("fail.sh", "#!/bin/sh\necho 'no such account' >&2\nexit 2\n", 0700);
	write_file("v2.sh", "#!/bin/sh\necho '{\"Version\": 2, \"AccessKeyId\": \"A\", "
			    "\"SecretAccessKey\": \"s\"}'\n", 0700);
	write_file("notjson.sh", "#!/bin/sh\necho 'AccessKeyId=A'\n", 0700);
	write_file("badexp.sh", "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"A\", "
				"\"SecretAccessKey\": \"s\", \"Expiration\": \"tomorrow\"}'\n", 0700);
	write_file("noexp.sh", "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIASTATIC\", "
			       "\"SecretAccessKey\": \"s\"}'\n", 0700);
	snprintf(cfg, sizeof(cfg),
		 "[profile ok]\ncredential_process = %s/ok.sh \"two words\"\n"
		 "[profile fail]\ncredential_process = %s/fail.sh\n"
		 "[profile v2]\ncredential_process = %s/v2.sh\n"
		 "[profile notjson]\ncredential_process = %s/notjson.sh\n"
		 "[profile badexp]\ncredential_process = %s/badexp.sh\n"
		 "[profile noexp]\ncredential_process = '%s/noexp.sh'\n"
		 "[profile missing]\ncredential_process = %s/does-not-exist\n"
		 "[profile quote]\ncredential_process = %s/ok.sh \"unterminated\n",
		 tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
	write_file("config", cfg, 0600);

	char err[512];
	struct creds_provider *p = new_provider("ok", NULL, err, sizeof(err));
	struct aws_credentials c;
	if (p == NULL)
		fail_msg("%s", err);
	assert_string_equal(creds_provider_source(p), "credential-process");
	assert_int_equal(creds_provider_get(p, &c), 0);
	assert_string_equal(c.access_key_id, "AKIAPROC");
	assert_string_equal(c.session_token, "tp");
	assert_int_equal(c.expiration, 1800003600);
	aws_credentials_clear(&c);
	creds_provider_free(p);

	expect_source("noexp", "credential-process", "AKIASTATIC");
	expect_error("fail", "credential_process: exit status 2: no such account");
	expect_error("v2", "Version is not 1");
	expect_error("notjson", "credential_process output: not JSON");
	expect_error("badexp", "Expiration \"tomorrow\" is not an RFC 3339 time");
	expect_error("missing", "does-not-exist");
	expect_error("quote", "cannot split the command line");
}

static void use_container(const char *path)
{
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, path);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
}

static void test_container(void **state)
{
	char err[512];
	struct creds_provider *p;

	(void)state;
	route("GET", "/creds", 200,
	      "{\"AccessKeyId\": \"AKIACONT\", \"SecretAccessKey\": \"sc\", \"Token\": \"tc\", "
	      "\"Expiration\": \"2027-01-15T10:00:00Z\", \"RoleArn\": \"arn:aws:iam::1:role/t\"}");
	use_container("/creds");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "literal-token", 1);
	write_file("token", "file-token\n", 0600);
	set_path_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "token");
	p = new_provider(NULL, NULL, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	assert_string_equal(creds_provider_source(p), "container");
	creds_provider_free(p);
	assert_true(log_contains("GET /creds HTTP/1.1"));
	assert_true(log_contains("Authorization: file-token\r\n")); /* the file wins */
	assert_true(log_contains("Accept: application/json"));

	write_file("token", "bad\r\ninjected: x", 0600);
	expect_error(NULL, "authorization token contains a line break");
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");

	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", 1);
	expect_error(NULL, "host example.com is not allowed");
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.169.254.example.com/", 1);
	expect_error(NULL, "is not allowed");

	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "no-slash", 1);
	expect_error(NULL, "must start with '/'");
	unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");

	static const struct {
		int status;
		const char *body, *err;
	} bad[] = {
		{ 200, "not json", "not JSON" },
		{ 200, "[1, 2]", "not a JSON object" },
		{ 200, "{\"SecretAccessKey\": \"s\"}", "AccessKeyId missing" },
		{ 200, "{\"AccessKeyId\": 5, \"SecretAccessKey\": \"s\"}", "AccessKeyId is not a string" },
		{ 200, "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"\"}", "SecretAccessKey is empty" },
		{ 200, "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"s\", \"Token\": []}", "Token is not a string" },
		{ 200, "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"s\", \"Expiration\": \"2027-02-30T00:00:00Z\"}", "is not an RFC 3339 time" },
		{ 200, "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"s\", \"Expiration\": 1800000000}", "Expiration is not a string" },
		{ 200, "{\"AccessKeyId\": \"A\", \"AccessKeyId\": \"B\", \"SecretAccessKey\": \"s\"}", "not JSON" },
		{ 200, "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"s\", \"Expiration\": \"2020-01-01T00:00:00Z\"}", "expired already" },
		{ 500, "{}", "HTTP 500" },
	};
	use_container("/bad");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		route("GET", "/bad", bad[i].status, bad[i].body);
		expect_error(NULL, bad[i].err);
	}
}

#define IMDS_CREDS(akid, exp)                                                                  \
	"{\"Code\": \"Success\", \"Type\": \"AWS-HMAC\", \"AccessKeyId\": \"" akid "\", "         \
	"\"SecretAccessKey\": \"si\", \"Token\": \"ti\", \"Expiration\": \"" exp "\"}"

static void use_imds(void)
{
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", srv.port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	route("PUT", "/latest/api/token", 200, "imds-session-token\n");
	route("GET", "/latest/meta-data/iam/security-credentials/", 200, "my-role\n");
}

static void test_imds(void **state)
{
	(void)state;
	use_imds();
	route("GET", "/latest/meta-data/iam/security-credentials/my-role", 200,
	      IMDS_CREDS("AKIAIMDS", "2027-01-15T14:00:00Z"));
	expect_source(NULL, "imds", "AKIAIMDS");
	assert_true(log_contains("PUT /latest/api/token HTTP/1.1\r\n"));
	assert_true(log_contains("X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"));
	assert_true(log_contains("GET /latest/meta-data/iam/security-credentials/my-role HTTP/1.1"));
	assert_true(log_contains("X-aws-ec2-metadata-token: imds-session-token\r\n"));

	/* error documents and bad JSON are not credentials */
	route("GET", "/latest/meta-data/iam/security-credentials/my-role", 200,
	      "{\"Code\": \"AssumeRoleUnauthorizedAccess\", \"Message\": \"no\"}");
	expect_error(NULL, "IMDS (GET http://127.0.0.1:");
	expect_error(NULL, "Code is \"AssumeRoleUnauthorizedAccess\"");
	route("GET", "/latest/meta-data/iam/security-credentials/my-role", 200,
	      "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"s\", \"Expiration\": \"2027-01-15T14:00:00Z\"}");
	expect_error(NULL, "Token missing");
}

static void test_imds_token_failure_has_no_v1_fallback(void **state)
{
	(void)state;
	use_imds();
	route("GET", "/latest/meta-data/iam/security-credentials/my-role", 200,
	      IMDS_CREDS("AKIAV1", "2027-01-15T14:00:00Z"));
	route("PUT", "/latest/api/token", 403, "");
	expect_error(NULL, "IMDS (token PUT http://127.0.0.1:");
	expect_error(NULL, "HTTP 403");
	assert_false(log_contains("GET /latest/meta-data"));
}

static void test_precedence(void **state)
{
	char cfg[512];

	(void)state;
	use_imds();
	route("GET", "/latest/meta-data/iam/security-credentials/my-role", 200,
	      IMDS_CREDS("AKIAIMDS", "2027-01-15T14:00:00Z"));
	route("GET", "/creds", 200, "{\"AccessKeyId\": \"AKIACONT\", \"SecretAccessKey\": \"s\"}");
	use_container("/creds");
	write_file("proc.sh", "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\", "
			      "\"SecretAccessKey\": \"s\"}'\n", 0700);
	snprintf(cfg, sizeof(cfg), "[default]\ncredential_process = %s/proc.sh\n", tmpdir);
	write_file("config", cfg, 0600);
	write_file("credentials", "[default]\naws_access_key_id = AKIAFILE\n"
				  "aws_secret_access_key = s\n", 0600);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "s", 1);

	expect_source(NULL, "environment", "AKIAENV");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	expect_source(NULL, "shared-files", "AKIAFILE");
	write_file("credentials", "", 0600);
	expect_source(NULL, "credential-process", "AKIAPROC");
	write_file("config", "", 0600);
	expect_source(NULL, "container", "AKIACONT");
	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	expect_source(NULL, "imds", "AKIAIMDS");
}

static int wait_for_requests(size_t n, int held)
{
	struct timespec deadline;
	int ok;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	pthread_mutex_lock(&srv.lock);
	while (srv.nrequests < n || srv.held < held)
		if (pthread_cond_timedwait(&srv.cond, &srv.lock, &deadline) == ETIMEDOUT)
			break;
	ok = srv.nrequests >= n && srv.held >= held;
	pthread_mutex_unlock(&srv.lock);
	return ok;
}

static void test_refresh_before_expiry_does_not_block(void **state)
{
	char err[512];
	struct creds_provider *p;
	struct aws_credentials c;
	struct timespec deadline;

	(void)state;
	use_imds();
	/* first set expires at 2027-01-15T09:00:00Z = fake start + 1 h */
	route("GET", "/latest/meta-data/iam/security-credentials/my-role", 200,
	      IMDS_CREDS("AKIAFIRST", "2027-01-15T09:00:00Z"));
	p = new_provider(NULL, NULL, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	assert_int_equal(srv.nrequests, 3);

	/* far from expiry: no refresh */
	assert_int_equal(creds_provider_get(p, &c), 0);
	assert_string_equal(c.access_key_id, "AKIAFIRST");
	aws_credentials_clear(&c);

	/* 10 min before expiry (inside the 15 min IMDS window): the refresh starts, the server
	 * holds it, and get() keeps answering with the old credentials meanwhile. */
	route("GET", "/latest/meta-data/iam/security-credentials/my-role", 200,
	      IMDS_CREDS("AKIASECOND", "2027-01-15T15:00:00Z"));
	pthread_mutex_lock(&srv.lock);
	srv.gate_closed = 1;
	pthread_mutex_unlock(&srv.lock);
	set_fake_now(1800003600 - 600);
	assert_int_equal(creds_provider_get(p, &c), 0);
	assert_true(wait_for_requests(4, 1));
	aws_credentials_clear(&c);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(creds_provider_get(p, &c), 0);
		assert_string_equal(c.access_key_id, "AKIAFIRST");
		aws_credentials_clear(&c);
	}
	pthread_mutex_lock(&srv.lock);
	srv.gate_closed = 0;
	pthread_cond_broadcast(&srv.cond);
	pthread_mutex_unlock(&srv.lock);

	/* wait (with a deadline) until the new set is served */
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 10;
	for (;;) {
		struct timespec now;
		assert_int_equal(creds_provider_get(p, &c), 0);
		int second = strcmp(c.access_key_id, "AKIASECOND") == 0;
		aws_credentials_clear(&c);
		if (second)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > deadline.tv_sec)
			fail_msg("refreshed credentials never appeared");
		sched_yield();
	}
	assert_true(log_contains("X-aws-ec2-metadata-token-ttl-seconds"));
	creds_provider_free(p);
}

static void test_expired_and_refresh_failing(void **state)
{
	char err[512];
	struct creds_provider *p;
	struct aws_credentials c;

	(void)state;
	use_imds();
	route("GET", "/latest/meta-data/iam/security-credentials/my-role", 200,
	      IMDS_CREDS("AKIAFIRST", "2027-01-15T09:00:00Z"));
	p = new_provider(NULL, NULL, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	route("PUT", "/latest/api/token", 500, "");
	set_fake_now(1800003600 + 1);
	assert_int_equal(creds_provider_get(p, &c), -EKEYEXPIRED);
	assert_null(c.access_key_id);
	assert_true(wait_for_requests(4, 0)); /* the failed refresh attempt */
	assert_int_equal(creds_provider_get(p, &c), -EKEYEXPIRED);
	creds_provider_free(p); /* joins the thread even while it backs off */
}

static void test_parse_time(void **state)
{
	static const struct {
		const char *s;
		int ok;
		int64_t t;
	} cases[] = {
		{ "2027-01-15T08:00:00Z", 1, 1800000000 },
		{ "2027-01-15T08:00:00.123456Z", 1, 1800000000 },
		{ "2027-01-15T10:00:00+02:00", 1, 1800000000 },
		{ "2027-01-15T07:30:00-00:30", 1, 1800000000 },
		{ "2027-01-15 08:00:00Z", 0, 0 },
		{ "2027-01-15T08:00:00", 0, 0 },
		{ "2027-13-15T08:00:00Z", 0, 0 },
		{ "2027-02-29T08:00:00Z", 0, 0 },
		{ "2027-01-15T24:00:00Z", 0, 0 },
		{ "2027-01-15T08:00:00.Z", 0, 0 },
		{ "2027-01-15T08:00:00Zjunk", 0, 0 },
		{ "2027-01-15T08:00:00+0200", 0, 0 },
		{ "", 0, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t t = 0;
		int r = creds_parse_time(cases[i].s, &t);
		if ((r == 0) != cases[i].ok)
			fail_msg("\"%s\": got %d", cases[i].s, r);
		if (cases[i].ok)
			assert_int_equal(t, cases[i].t);
	}
	assert_int_equal(creds_parse_time(NULL, &(int64_t){ 0 }), -EINVAL);
}

static void use_fake_sts(void);

/* EKS Pod Identity: FULL_URI and a token file that the agent rotates, read at every call. */
static void test_pod_identity_reads_the_token_file_at_every_call(void **state)
{
	struct creds_provider *p;
	struct aws_credentials c;
	char err[512], url[128];

	(void)state;
	route("GET", "/v1/credentials", 200,
	      "{\"AccessKeyId\": \"ASIAPOD\", \"SecretAccessKey\": \"sp\", \"Token\": \"tp\", "
	      "\"Expiration\": \"2027-01-15T09:00:00Z\", \"AccountId\": \"111111111111\"}");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/credentials", srv.port);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	write_file("eks-pod-identity-token", "pod-token-1\n", 0644);
	set_path_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "eks-pod-identity-token");
	p = new_provider(NULL, NULL, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	assert_string_equal(creds_provider_source(p), "container");
	assert_true(log_contains("Authorization: pod-token-1\r\n"));
	write_file("eks-pod-identity-token", "pod-token-2\n", 0644);
	set_fake_now(1800003600 - 60);
	(void)creds_provider_get(p, &c);
	aws_credentials_clear(&c);
	for (int i = 0; i < 1000 && !log_contains("Authorization: pod-token-2"); i++)
		usleep(10000);
	assert_true(log_contains("Authorization: pod-token-2\r\n"));
	creds_provider_free(p);
}

static size_t requests_seen(void)
{
	size_t n;

	pthread_mutex_lock(&srv.lock);
	n = srv.nrequests;
	pthread_mutex_unlock(&srv.lock);
	return n;
}

/* Throttling and server errors are retried inside one fetch; AccessDenied is not. */
static void test_sts_retries_only_what_can_pass(void **state)
{
	static const struct {
		int status;
		const char *body;
		size_t attempts;
		const char *err;
	} cases[] = {
		{ 400, "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message>"
		       "</Error></ErrorResponse>", 3, "Throttling: Rate exceeded" },
		{ 503, "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>", 3,
		  "ServiceUnavailable" },
		{ 403, "<ErrorResponse><Error><Code>RegionDisabledException</Code><Message>STS is not "
		       "activated</Message></Error></ErrorResponse>", 1, "STS is not activated in this "
		       "region for the account" },
		{ 400, "<ErrorResponse><Error><Code>ExpiredToken</Code></Error></ErrorResponse>", 1,
		  "the source credentials have expired" },
		{ 200, "<html>captive portal</html>", 3, "answer that is not STS XML" },
	};

	(void)state;
	use_fake_sts();
	write_file("config", "[profile role]\nrole_arn = arn:aws:iam::111111111111:role/A\n"
			     "source_profile = base\n[profile base]\naws_access_key_id = AKIABASE\n"
			     "aws_secret_access_key = basesecret\n", 0600);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct creds_options o = { .region = "eu-west-1" };
		struct creds_source src = { 0 };
		struct aws_credentials c;
		char why[1024] = "";
		size_t before;

		assert_int_equal(creds_profile_source(&o, "role", &src, why, sizeof(why)), 1);
		route("POST", "/", cases[i].status, cases[i].body);
		before = requests_seen();
		assert_true(creds_sts_fetch(&src, &c, why, sizeof(why)) < 0);
		assert_int_equal(requests_seen() - before, cases[i].attempts);
		if (strstr(why, cases[i].err) == NULL ||
		    strstr(why, "arn:aws:iam::111111111111:role/A") == NULL)
			fail_msg("\"%s\" lacks \"%s\" or the role", why, cases[i].err);
		assert_null(strstr(why, "basesecret"));
		creds_source_clear(&src);
	}
}

/* ---- roles: profile resolution (no I/O) ---- */

/* "assume-role arn <- shared-files" etc.: the chain of sources as a string. */
static void describe_chain(const struct creds_source *src, char *out, size_t n)
{
	out[0] = '\0';
	for (const struct creds_source *s = src; s != NULL; s = s->base) {
		size_t used = strlen(out);
		snprintf(out + used, n - used, "%s%s%s%s", used ? " <- " : "",
			 creds_source_name(s->kind), s->role_arn ? " " : "",
			 s->role_arn ? s->role_arn : "");
	}
}

static void test_profile_resolution_table(void **state)
{
	static const char config[] =
		"[profile a]\nrole_arn = arn:aws:iam::111111111111:role/A\nsource_profile = b\n"
		"[profile b]\nrole_arn = arn:aws:iam::222222222222:role/B\nsource_profile = base\n"
		"[profile base]\naws_access_key_id = AKIABASE\naws_secret_access_key = s\n"
		"[profile selfkeys]\nrole_arn = arn:aws:iam::1:role/Self\nsource_profile = selfkeys\n"
		"aws_access_key_id = AKIASELF\naws_secret_access_key = s\n"
		"[profile selfnokeys]\nrole_arn = arn:aws:iam::1:role/Self\nsource_profile = selfnokeys\n"
		"[profile cyc1]\nrole_arn = arn:aws:iam::1:role/C1\nsource_profile = cyc2\n"
		"[profile cyc2]\nrole_arn = arn:aws:iam::1:role/C2\nsource_profile = cyc1\n"
		"[profile d1]\nrole_arn = arn:aws:iam::1:role/D1\nsource_profile = d2\n"
		"[profile d2]\nrole_arn = arn:aws:iam::1:role/D2\nsource_profile = d3\n"
		"[profile d3]\nrole_arn = arn:aws:iam::1:role/D3\nsource_profile = d4\n"
		"[profile d4]\nrole_arn = arn:aws:iam::1:role/D4\nsource_profile = d5\n"
		"[profile d5]\nrole_arn = arn:aws:iam::1:role/D5\nsource_profile = d6\n"
		"[profile d6]\nrole_arn = arn:aws:iam::1:role/D6\nsource_profile = base\n"
		"[profile d2ok]\nrole_arn = arn:aws:iam::1:role/D2\nsource_profile = d3\n"
		"[profile imds]\nrole_arn = arn:aws:iam::1:role/I\ncredential_source = Ec2InstanceMetadata\n"
		"[profile env]\nrole_arn = arn:aws:iam::1:role/E\ncredential_source = Environment\n"
		"[profile ecs]\nrole_arn = arn:aws:iam::1:role/C\ncredential_source = EcsContainer\n"
		"[profile badsrc]\nrole_arn = arn:aws:iam::1:role/X\ncredential_source = Lambda\n"
		"[profile both]\nrole_arn = arn:aws:iam::1:role/X\ncredential_source = Environment\n"
		"source_profile = base\n"
		"[profile neither]\nrole_arn = arn:aws:iam::1:role/X\n"
		"[profile mfa]\nrole_arn = arn:aws:iam::1:role/X\nsource_profile = base\n"
		"mfa_serial = arn:aws:iam::1:mfa/me\n"
		"[profile dur]\nrole_arn = arn:aws:iam::1:role/X\nsource_profile = base\n"
		"duration_seconds = 899\n"
		"[profile durmax]\nrole_arn = arn:aws:iam::1:role/X\nsource_profile = base\n"
		"duration_seconds = 43200\n"
		"[profile wi]\nrole_arn = arn:aws:iam::1:role/W\nweb_identity_token_file = /t\n"
		"[profile wiconf]\nrole_arn = arn:aws:iam::1:role/W\nweb_identity_token_file = /t\n"
		"source_profile = base\n"
		"[profile nokeys]\nrole_arn = arn:aws:iam::1:role/X\nsource_profile = empty\n"
		"[profile empty]\nregion = us-east-1\n"
		"[profile missing]\nrole_arn = arn:aws:iam::1:role/X\nsource_profile = ghost\n"
		"[profile badarn]\nrole_arn = role/X\nsource_profile = base\n"
		"[profile badsession]\nrole_arn = arn:aws:iam::1:role/X\nsource_profile = base\n"
		"role_session_name = has space\n"
		"[profile keysandrole]\nrole_arn = arn:aws:iam::1:role/K\n"
		"aws_access_key_id = AKIAK\naws_secret_access_key = s\nsource_profile = keysandrole\n"
		"[profile viaproc]\nrole_arn = arn:aws:iam::1:role/P\nsource_profile = proc\n"
		"[profile proc]\ncredential_process = /bin/true\n";
	static const struct {
		const char *profile;
		int result;
		const char *expect;   /* the chain, or a substring of the error */
	} cases[] = {
		{ "a", 1, "assume-role arn:aws:iam::111111111111:role/A <- assume-role "
			  "arn:aws:iam::222222222222:role/B <- shared-files" },
		{ "selfkeys", 1, "assume-role arn:aws:iam::1:role/Self <- shared-files" },
		{ "keysandrole", 1, "assume-role arn:aws:iam::1:role/K <- shared-files" },
		{ "selfnokeys", -EINVAL, "is its own source_profile but has no static keys" },
		{ "cyc1", -ELOOP, "cycle through source_profile: cyc1 -> cyc2 -> cyc1" },
		{ "d1", -ELOOP, "more than 5 source_profile hops" },
		{ "d2ok", 1, "assume-role arn:aws:iam::1:role/D2 <- assume-role arn:aws:iam::1:role/D3 "
			     "<- assume-role arn:aws:iam::1:role/D4 <- assume-role "
			     "arn:aws:iam::1:role/D5 <- assume-role arn:aws:iam::1:role/D6 <- "
			     "shared-files" },
		{ "imds", 1, "assume-role arn:aws:iam::1:role/I <- imds" },
		{ "env", 1, "assume-role arn:aws:iam::1:role/E <- environment" },
		{ "ecs", -EINVAL, "EcsContainer but AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" },
		{ "badsrc", -EINVAL, "credential_source \"Lambda\" is not one of Environment, "
				     "Ec2InstanceMetadata, EcsContainer" },
		{ "both", -EINVAL, "source_profile and credential_source cannot both be set" },
		{ "neither", -EINVAL, "role_arn needs source_profile, credential_source or "
				      "web_identity_token_file" },
		{ "mfa", -ENOTSUP, "mfa_serial is set, but a daemon cannot prompt" },
		{ "dur", -EINVAL, "duration_seconds must be 900 to 43200, not \"899\"" },
		{ "durmax", 1, "assume-role arn:aws:iam::1:role/X <- shared-files" },
		{ "wi", 1, "web-identity arn:aws:iam::1:role/W" },
		{ "wiconf", -EINVAL, "web_identity_token_file cannot be combined with source_profile" },
		{ "nokeys", -EINVAL, "profile \"empty\" (source_profile of \"nokeys\") holds no "
				     "credentials" },
		{ "missing", -ENOENT, "profile \"ghost\" (source_profile of \"missing\") is in neither" },
		{ "badarn", -EINVAL, "role_arn \"role/X\" is not a role ARN" },
		{ "badsession", -EINVAL, "role_session_name must be 2 to 64" },
		{ "viaproc", 1, "assume-role arn:aws:iam::1:role/P <- credential-process" },
		{ "empty", 0, "" },
	};

	(void)state;
	write_file("config", config, 0600);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct creds_options o = { .region = "eu-west-1" };
		struct creds_source src = { 0 };
		char why[512] = "", chain[1024];
		int r = creds_profile_source(&o, cases[i].profile, &src, why, sizeof(why));

		describe_chain(&src, chain, sizeof(chain));
		if (r != cases[i].result)
			fail_msg("profile %s: %d, want %d (%s)", cases[i].profile, r, cases[i].result,
				 why);
		if (r > 0 && strcmp(chain, cases[i].expect) != 0)
			fail_msg("profile %s: chain \"%s\", want \"%s\"", cases[i].profile, chain,
				 cases[i].expect);
		if (r < 0 && strstr(why, cases[i].expect) == NULL)
			fail_msg("profile %s: \"%s\" does not contain \"%s\"", cases[i].profile, why,
				 cases[i].expect);
		if (r > 0 && src.kind == CREDS_SRC_ASSUME_ROLE) {
			assert_string_equal(src.sts_url, "https://sts.eu-west-1.amazonaws.com");
			assert_string_equal(src.sts_region, "eu-west-1");
			assert_int_equal(src.duration_seconds,
					 strcmp(cases[i].profile, "durmax") == 0 ? 43200 : 3600);
			assert_int_equal(strncmp(src.session_name, "ivs-autoscaler-", 15), 0);
		}
		creds_source_clear(&src);
	}
}

static void test_sts_endpoint(void **state)
{
	struct creds_source src = { 0 };
	char why[256];

	(void)state;
	assert_int_equal(creds_sts_configure(&src, NULL, why, sizeof(why)), 0);
	assert_string_equal(src.sts_url, "https://sts.amazonaws.com");
	assert_string_equal(src.sts_region, "us-east-1");
	setenv("AWS_ENDPOINT_URL", "https://vpce.example/", 1);
	assert_int_equal(creds_sts_configure(&src, "eu-west-1", why, sizeof(why)), 0);
	assert_string_equal(src.sts_url, "https://vpce.example");
	setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9/", 1);
	assert_int_equal(creds_sts_configure(&src, "eu-west-1", why, sizeof(why)), 0);
	assert_string_equal(src.sts_url, "http://127.0.0.1:9");
	assert_string_equal(src.sts_region, "eu-west-1");
	setenv("AWS_ENDPOINT_URL_STS", "http://sts.example", 1);
	assert_int_equal(creds_sts_configure(&src, "eu-west-1", why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "AWS_ENDPOINT_URL_STS must be an https:// URL"));
	creds_source_clear(&src);
}

/* ---- roles against the fake server as STS ---- */

static const char assume_role_ok[] =
	"<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
	"  <AssumeRoleResult>\n"
	"    <AssumedRoleUser><AssumedRoleId>AROA3XFRBF535PLBIFPI4:s</AssumedRoleId>\n"
	"      <Arn>arn:aws:sts::111111111111:assumed-role/A/s</Arn></AssumedRoleUser>\n"
	"    <Credentials>\n"
	"      <AccessKeyId>ASIAASSUMED</AccessKeyId>\n"
	"      <SecretAccessKey>assumedsecret</SecretAccessKey>\n"
	"      <SessionToken>assumedtoken</SessionToken>\n"
	"      <Expiration>2027-01-15T09:00:00Z</Expiration>\n"
	"    </Credentials>\n"
	"  </AssumeRoleResult>\n"
	"  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"
	"</ResponseMetadata>\n"
	"</AssumeRoleResponse>\n";

static const char access_denied[] =
	"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender"
	"</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::1:user/u is not authorized to "
	"perform: sts:AssumeRole</Message></Error><RequestId>r-1</RequestId></ErrorResponse>";

static void use_fake_sts(void)
{
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	setenv("AWS_ENDPOINT_URL_STS", url, 1);
}

static void test_assume_role_signed_with_source_keys(void **state)
{
	struct creds_provider *p;
	struct aws_credentials c;
	char err[1024];

	(void)state;
	use_fake_sts();
	write_file("config", "[profile role]\nrole_arn = arn:aws:iam::111111111111:role/A\n"
			     "source_profile = base\nexternal_id = ext-1\nduration_seconds = 900\n"
			     "role_session_name = sess\n"
			     "[profile base]\naws_access_key_id = AKIABASE\n"
			     "aws_secret_access_key = basesecret\n", 0600);
	route("POST", "/", 200, assume_role_ok);
	p = new_provider("role", NULL, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	assert_string_equal(creds_provider_source(p), "assume-role");
	assert_int_equal(creds_provider_get(p, &c), 0);
	assert_string_equal(c.access_key_id, "ASIAASSUMED");
	assert_string_equal(c.session_token, "assumedtoken");
	assert_int_equal(c.expiration, 1800003600);
	aws_credentials_clear(&c);
	creds_provider_free(p);
	assert_true(log_contains("Authorization: AWS4-HMAC-SHA256 Credential=AKIABASE/"));
	assert_true(log_contains("/us-east-1/sts/aws4_request"));
	assert_true(log_contains("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A"
				 "111111111111%3Arole%2FA&RoleSessionName=sess&ExternalId=ext-1&"
				 "DurationSeconds=900"));
	assert_false(log_contains("X-Amz-Security-Token"));
}

static void test_assume_role_refused_starts_and_retries(void **state)
{
	struct creds_provider *p;
	struct aws_credentials c;
	char err[1024];

	(void)state;
	use_fake_sts();
	write_file("config", "[profile role]\nrole_arn = arn:aws:iam::111111111111:role/A\n"
			     "source_profile = base\n[profile base]\naws_access_key_id = AKIABASE\n"
			     "aws_secret_access_key = basesecret\n", 0600);
	route("POST", "/", 403, access_denied);
	p = new_provider("role", NULL, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	assert_int_equal(creds_provider_get(p, &c), -EKEYEXPIRED);
	/* The thread retries on its own; once STS agrees the credentials appear. */
	route("POST", "/", 200, assume_role_ok);
	for (int i = 0; i < 1000 && creds_provider_get(p, &c) != 0; i++)
		usleep(10000);
	assert_non_null(c.access_key_id);
	assert_string_equal(c.access_key_id, "ASIAASSUMED");
	aws_credentials_clear(&c);
	creds_provider_free(p);
}

static void test_web_identity_from_environment(void **state)
{
	struct creds_provider *p;
	struct aws_credentials c;
	char err[1024], path[256];

	(void)state;
	use_fake_sts();
	write_file("token", "eyJhbGciOi.first-token\n", 0644);
	snprintf(path, sizeof(path), "%s/token", tmpdir);
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
	expect_error(NULL, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
	setenv("AWS_ROLE_ARN", "arn:aws:iam::111111111111:role/W", 1);
	setenv("AWS_ROLE_SESSION_NAME", "pod-1", 1);
	route("POST", "/", 200,
	      "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
	      "<AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>w</SecretAccessKey>"
	      "<SessionToken>t</SessionToken><Expiration>2027-01-15T09:00:00.000Z</Expiration>"
	      "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>");
	p = new_provider(NULL, NULL, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	assert_string_equal(creds_provider_source(p), "web-identity");
	assert_int_equal(creds_provider_get(p, &c), 0);
	assert_string_equal(c.access_key_id, "ASIAWEB");
	aws_credentials_clear(&c);
	assert_true(log_contains("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn="));
	assert_true(log_contains("RoleSessionName=pod-1&WebIdentityToken=eyJhbGciOi.first-token"));
	assert_false(log_contains("Authorization:"));
	/* The token file is read again at every refresh (EKS rotates it). */
	write_file("token", "eyJhbGciOi.second-token\n", 0644);
	set_fake_now(1800003600 - 60);
	(void)creds_provider_get(p, &c);
	aws_credentials_clear(&c);
	for (int i = 0; i < 1000 && !log_contains("second-token"); i++)
		usleep(10000);
	assert_true(log_contains("WebIdentityToken=eyJhbGciOi.second-token"));
	creds_provider_free(p);
}

static void test_region(void **state)
{
	char region[64], err[512];

	(void)state;
	write_file("config", "[default]\nregion = eu-central-1\n[profile p]\nregion = ap-south-1\n",
		   0600);
	assert_int_equal(creds_resolve_region(NULL, NULL, region, sizeof(region), err, sizeof(err)), 0);
	assert_string_equal(region, "eu-central-1");
	assert_int_equal(creds_resolve_region("", "p", region, sizeof(region), err, sizeof(err)), 0);
	assert_string_equal(region, "ap-south-1");
	setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
	assert_int_equal(creds_resolve_region(NULL, "p", region, sizeof(region), err, sizeof(err)), 0);
	assert_string_equal(region, "us-west-1");
	setenv("AWS_REGION", "us-west-2", 1);
	assert_int_equal(creds_resolve_region(NULL, "p", region, sizeof(region), err, sizeof(err)), 0);
	assert_string_equal(region, "us-west-2");
	assert_int_equal(creds_resolve_region("us-east-1", "p", region, sizeof(region), err,
					      sizeof(err)), 0);
	assert_string_equal(region, "us-east-1");
	assert_int_equal(creds_resolve_region("us east/1", NULL, region, sizeof(region), err,
					      sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "aws.region is not a region name"));
	assert_int_equal(creds_resolve_region("us-east-1", NULL, region, 4, err, sizeof(err)),
			 -ENAMETOOLONG);
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	assert_int_equal(creds_resolve_region(NULL, "nope", region, sizeof(region), err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "no AWS region"));
	write_file("config", "[default\n", 0600);
	assert_int_equal(creds_resolve_region(NULL, NULL, region, sizeof(region), err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "line 1: unterminated section header"));
}

/* No region configured anywhere: the instance's own, from IMDSv2 (as the SDKs do on EC2). */
static void test_region_from_imds(void **state)
{
	char region[64], err[512];

	(void)state;
	assert_int_equal(creds_resolve_region(NULL, NULL, region, sizeof(region), err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "IMDS is disabled by AWS_EC2_METADATA_DISABLED"));
	use_imds();
	route("GET", "/latest/meta-data/placement/region", 200, "ap-northeast-2\n");
	assert_int_equal(creds_resolve_region(NULL, NULL, region, sizeof(region), err, sizeof(err)), 0);
	assert_string_equal(region, "ap-northeast-2");
	assert_true(log_contains("X-aws-ec2-metadata-token: imds-session-token"));
	route("GET", "/latest/meta-data/placement/region", 200, "not a region\n");
	assert_int_equal(creds_resolve_region(NULL, NULL, region, sizeof(region), err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "IMDS placement/region is not a region name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_found_names_every_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_files_and_profiles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credential_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_container, setup, teardown),
		cmocka_unit_test_setup_teardown(test_imds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_imds_token_failure_has_no_v1_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_before_expiry_does_not_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_and_refresh_failing, setup, teardown),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test_setup_teardown(test_region, setup, teardown),
		cmocka_unit_test_setup_teardown(test_region_from_imds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_identity_reads_the_token_file_at_every_call,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_sts_retries_only_what_can_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profile_resolution_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sts_endpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_assume_role_signed_with_source_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_assume_role_refused_starts_and_retries, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_web_identity_from_environment, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
