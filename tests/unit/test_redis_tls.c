/*
 * test_redis_tls.c — the TLS read/write loop of redis_tls.c against an in-process OpenSSL
 * server over BIO pairs (no sockets): records split at every byte, retried writes with the same
 * bytes, decrypted data waiting in SSL_pending with nothing left to read below, WANT_WRITE
 * returned by a read, and the operator-facing error texts (unknown CA, expired certificate,
 * name mismatch, plain-text peer, client certificate required). Certificates are made here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "redis_tls.h"

#define DAY (24L * 3600L)

struct pki {
	EVP_PKEY *ca_key, *other_ca_key, *server_key, *client_key;
	X509 *ca, *other_ca, *server, *expired, *client;
	char dir[64], ca_file[128], other_ca_file[128], client_cert[128], client_key_file[128];
};

static struct pki pki;

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer (NULL = self-signed), valid [from, to] from now. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
		       const char *san, long from, long to, bool ca)
{
	static long serial = 1;
	X509 *cert = X509_new();

	assert_non_null(cert);
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
	X509_gmtime_adj(X509_getm_notBefore(cert), from);
	X509_gmtime_adj(X509_getm_notAfter(cert), to);
	X509_set_pubkey(cert, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(cert, X509_get_subject_name(issuer != NULL ? issuer : cert));
	add_ext(cert, issuer != NULL ? issuer : cert, NID_basic_constraints,
		ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (san != NULL)
		add_ext(cert, issuer, NID_subject_alt_name, san);
	assert_true(X509_sign(cert, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
	return cert;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (cert != NULL)
		assert_int_equal(PEM_write_X509(f, cert), 1);
	if (key != NULL)
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

static int setup_pki(void **state)
{
	(void)state;
	snprintf(pki.dir, sizeof(pki.dir), "/tmp/test-tls-XXXXXX");
	assert_non_null(mkdtemp(pki.dir));
	pki.ca_key = EVP_EC_gen("P-256");
	pki.other_ca_key = EVP_EC_gen("P-256");
	pki.server_key = EVP_EC_gen("P-256");
	pki.client_key = EVP_EC_gen("P-256");
	pki.ca = make_cert(pki.ca_key, "test CA", NULL, NULL, NULL, -DAY, DAY, true);
	pki.other_ca = make_cert(pki.other_ca_key, "other CA", NULL, NULL, NULL, -DAY, DAY, true);
	pki.server = make_cert(pki.server_key, "redis", pki.ca, pki.ca_key,
			       "DNS:redis.test,DNS:localhost,IP:127.0.0.1", -DAY, DAY, false);
	pki.expired = make_cert(pki.server_key, "redis", pki.ca, pki.ca_key,
				"DNS:redis.test,IP:127.0.0.1", -3 * DAY, -DAY, false);
	pki.client = make_cert(pki.client_key, "autoscaler", pki.ca, pki.ca_key, NULL, -DAY, DAY,
			       false);
	snprintf(pki.ca_file, sizeof(pki.ca_file), "%s/ca.pem", pki.dir);
	snprintf(pki.other_ca_file, sizeof(pki.other_ca_file), "%s/other.pem", pki.dir);
	snprintf(pki.client_cert, sizeof(pki.client_cert), "%s/client.pem", pki.dir);
	snprintf(pki.client_key_file, sizeof(pki.client_key_file), "%s/client.key", pki.dir);
	write_pem(pki.ca_file, pki.ca, NULL);
	write_pem(pki.other_ca_file, pki.other_ca, NULL);
	write_pem(pki.client_cert, pki.client, NULL);
	write_pem(pki.client_key_file, NULL, pki.client_key);
	return 0;
}

static int teardown_pki(void **state)
{
	char cmd[128];

	(void)state;
	X509_free(pki.ca);
	X509_free(pki.other_ca);
	X509_free(pki.server);
	X509_free(pki.expired);
	X509_free(pki.client);
	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.other_ca_key);
	EVP_PKEY_free(pki.server_key);
	EVP_PKEY_free(pki.client_key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- a client (redis_tls) and a server (plain OpenSSL) joined by a BIO pair ----------------- */

struct pair {
	SSL_CTX *client_ctx, *server_ctx;
	struct redis_tls *client;
	SSL *server;
};

static void pair_open(struct pair *p, const char *ca_file, const char *name, X509 *server_cert,
		      size_t bufsize, bool with_client_cert, bool require_client_cert)
{
	struct redis_tls_options o = { .ca_file = ca_file };
	char err[256];
	BIO *client_bio, *server_bio;

	if (with_client_cert) {
		o.cert_file = pki.client_cert;
		o.key_file = pki.client_key_file;
	}
	p->client_ctx = redis_tls_ctx_new(&o, err, sizeof(err));
	assert_non_null(p->client_ctx);
	p->server_ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(p->server_ctx);
	assert_int_equal(SSL_CTX_use_certificate(p->server_ctx, server_cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(p->server_ctx, pki.server_key), 1);
	/* No session tickets: they would only add post-handshake bytes nobody reads here. */
	SSL_CTX_set_num_tickets(p->server_ctx, 0);
	if (require_client_cert) {
		X509_STORE_add_cert(SSL_CTX_get_cert_store(p->server_ctx), pki.ca);
		SSL_CTX_set_verify(p->server_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   NULL);
	}
	p->client = redis_tls_new(p->client_ctx, name);
	assert_non_null(p->client);
	p->server = SSL_new(p->server_ctx);
	assert_non_null(p->server);
	assert_int_equal(BIO_new_bio_pair(&client_bio, bufsize, &server_bio, bufsize), 1);
	SSL_set_bio(redis_tls_ssl(p->client), client_bio, client_bio);
	SSL_set_bio(p->server, server_bio, server_bio);
	SSL_set_accept_state(p->server);
}

static void pair_close(struct pair *p)
{
	redis_tls_free(p->client);
	SSL_free(p->server);
	SSL_CTX_free(p->client_ctx);
	SSL_CTX_free(p->server_ctx);
	ERR_clear_error();
}

/* Drive both handshakes. Returns the client's final result (1 or REDIS_TLS_ERROR). */
static int pair_handshake(struct pair *p)
{
	bool server_done = false;

	for (int i = 0; i < 100000; i++) {
		int c = redis_tls_handshake(p->client);
		if (c == REDIS_TLS_ERROR)
			return c;
		if (!server_done) {
			int s = SSL_do_handshake(p->server);
			if (s == 1)
				server_done = true;
			else if (SSL_get_error(p->server, s) != SSL_ERROR_WANT_READ &&
				 SSL_get_error(p->server, s) != SSL_ERROR_WANT_WRITE) {
				ERR_clear_error();
				server_done = true;   /* the server gave up (an alert is on its way) */
			}
		}
		if (c == 1 && server_done)
			return 1;
	}
	fail_msg("handshake did not finish");
	return REDIS_TLS_ERROR;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_exchange_split_at_every_byte(void **state)
{
	static const char request[] = "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
	static const char reply[] = "$5\r\nhello\r\n";
	struct pair p;
	char got[64] = "", in[64] = "";
	size_t sent = 0, got_len = 0, server_got = 0;
	unsigned write_retries = 0, read_waits = 0;

	(void)state;
	/* A one-byte BIO pair: every TLS record crosses one byte at a time. */
	pair_open(&p, pki.ca_file, "redis.test", pki.server, 1, false, false);
	assert_int_equal(pair_handshake(&p), 1);
	assert_true(redis_tls_established(p.client));
	/* The client's write: retried with the same bytes until the whole record is through. */
	for (int i = 0; i < 100000 && (sent < sizeof(request) - 1 ||
				       server_got < sizeof(request) - 1); i++) {
		if (sent < sizeof(request) - 1) {
			ssize_t n = redis_tls_write(p.client, request + sent, sizeof(request) - 1 - sent);
			if (n == REDIS_TLS_WANT_WRITE)
				write_retries++;
			else if (n > 0)
				sent += (size_t)n;
			else
				fail_msg("write failed: %s", redis_tls_error(p.client));
		}
		size_t k = 0;
		if (SSL_read_ex(p.server, in + server_got, sizeof(request) - 1 - server_got, &k) == 1)
			server_got += k;
	}
	assert_int_equal(server_got, sizeof(request) - 1);
	assert_memory_equal(in, request, sizeof(request) - 1);
	assert_true(write_retries > 0);
	/* The server's reply, read one byte of record at a time. */
	size_t reply_sent = 0;
	for (int i = 0; i < 100000 && got_len < sizeof(reply) - 1; i++) {
		size_t k = 0;
		if (reply_sent < sizeof(reply) - 1 &&
		    SSL_write_ex(p.server, reply + reply_sent, sizeof(reply) - 1 - reply_sent, &k) == 1)
			reply_sent += k;
		ssize_t n = redis_tls_read(p.client, got + got_len, sizeof(got) - 1 - got_len);
		if (n == REDIS_TLS_WANT_READ)
			read_waits++;
		else if (n > 0)
			got_len += (size_t)n;
		else
			fail_msg("read failed: %s", redis_tls_error(p.client));
	}
	assert_int_equal(got_len, sizeof(reply) - 1);
	assert_memory_equal(got, reply, sizeof(reply) - 1);
	assert_true(read_waits > 0);
	pair_close(&p);
}

static void test_pending_data_without_socket_data(void **state)
{
	struct pair p;
	char big[5000], out[5000];
	size_t k = 0, got = 0;

	(void)state;
	memset(big, 'x', sizeof(big));
	pair_open(&p, pki.ca_file, "redis.test", pki.server, 65536, false, false);
	assert_int_equal(pair_handshake(&p), 1);
	assert_int_equal(SSL_write_ex(p.server, big, sizeof(big), &k), 1);
	assert_int_equal(k, sizeof(big));
	/* A small read decrypts the whole record; the rest waits inside OpenSSL. */
	assert_int_equal(redis_tls_read(p.client, out, 100), 100);
	got = 100;
	assert_int_equal(BIO_ctrl_pending(SSL_get_rbio(redis_tls_ssl(p.client))), 0);
	assert_int_equal(redis_tls_pending(p.client), sizeof(big) - 100);
	/* Nothing below to wake a poller, yet the loop must get it all. */
	while (got < sizeof(big)) {
		ssize_t n = redis_tls_read(p.client, out + got, sizeof(out) - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(out, big, sizeof(big));
	assert_int_equal(redis_tls_read(p.client, out, 1), REDIS_TLS_WANT_READ);
	pair_close(&p);
}

static void test_read_wants_write(void **state)
{
	struct pair p;
	char sink[64], x = 0;
	ssize_t n = 0;
	size_t k = 0;
	bool saw_want_write = false, z_sent = false;

	(void)state;
	/* Sixteen-byte BIO buffers, and TLS 1.2, where the server may ask for a renegotiation
	 * (TLS 1.3 key updates are answered on the next write, never from inside a read). */
	pair_open(&p, pki.ca_file, "redis.test", pki.server, 16, false, false);
	assert_int_equal(SSL_set_max_proto_version(p.server, TLS1_2_VERSION), 1);
	assert_int_equal(pair_handshake(&p), 1);
	/* HelloRequest, then a byte: the client's read must answer with a ClientHello, which
	 * does not fit in the 16 bytes its direction holds. */
	assert_int_equal(SSL_renegotiate(p.server), 1);
	(void)SSL_do_handshake(p.server);
	ERR_clear_error();
	for (int i = 0; i < 100000 && SSL_renegotiate_pending(p.server); i++) {
		n = redis_tls_read(p.client, &x, 1);
		if (n == REDIS_TLS_WANT_WRITE)
			saw_want_write = true;
		else if (n != REDIS_TLS_WANT_READ)
			fail_msg("read gave %zd: %s", n, redis_tls_error(p.client));
		(void)SSL_read_ex(p.server, sink, sizeof(sink), &k);   /* the server's side */
		ERR_clear_error();
	}
	assert_false(SSL_renegotiate_pending(p.server));
	/* And the session goes on. */
	for (int i = 0; i < 100000 && x == 0; i++) {
		if (!z_sent)
			z_sent = SSL_write_ex(p.server, "z", 1, &k) == 1;
		ERR_clear_error();
		n = redis_tls_read(p.client, &x, 1);
		if (n != REDIS_TLS_WANT_READ && n != REDIS_TLS_WANT_WRITE && n != 1)
			fail_msg("read gave %zd: %s", n, redis_tls_error(p.client));
	}
	assert_int_equal(x, 'z');
	assert_true(saw_want_write);
	pair_close(&p);
}

static void expect_handshake_error(const char *ca_file, const char *name, X509 *cert,
				   const char *want)
{
	struct pair p;

	pair_open(&p, ca_file, name, cert, 65536, false, false);
	assert_int_equal(pair_handshake(&p), REDIS_TLS_ERROR);
	if (strstr(redis_tls_error(p.client), want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", redis_tls_error(p.client), want);
	pair_close(&p);
}

static void test_verification_errors(void **state)
{
	(void)state;
	expect_handshake_error(pki.other_ca_file, "redis.test", pki.server,
			       "the server certificate is signed by an unknown CA");
	expect_handshake_error(pki.ca_file, "redis.test", pki.expired,
			       "the server certificate has expired");
	expect_handshake_error(pki.ca_file, "cache.example", pki.server,
			       "certificate is for redis.test, localhost, 127.0.0.1, not cache.example");
	expect_handshake_error(pki.ca_file, "127.0.0.2", pki.server,
			       "certificate is for redis.test, localhost, 127.0.0.1, not 127.0.0.2");
}

static void test_ip_address_san(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p, pki.ca_file, "127.0.0.1", pki.server, 65536, false, false);
	assert_int_equal(pair_handshake(&p), 1);
	/* No SNI for an address (RFC 6066). */
	assert_null(SSL_get_servername(p.server, TLSEXT_NAMETYPE_host_name));
	pair_close(&p);
	pair_open(&p, pki.ca_file, "redis.test", pki.server, 65536, false, false);
	assert_int_equal(pair_handshake(&p), 1);
	assert_string_equal(SSL_get_servername(p.server, TLSEXT_NAMETYPE_host_name), "redis.test");
	pair_close(&p);
}

static void test_plain_text_peer(void **state)
{
	SSL_CTX *ctx;
	struct redis_tls *t;
	char err[256];
	BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
	static const char answer[] = "-ERR unknown command '\\x16\\x03\\x01', with args\r\n";

	(void)state;
	ctx = redis_tls_ctx_new(&(struct redis_tls_options){ .ca_file = pki.ca_file }, err,
				sizeof(err));
	assert_non_null(ctx);
	t = redis_tls_new(ctx, "redis.test");
	assert_non_null(t);
	SSL_set_bio(redis_tls_ssl(t), rbio, wbio);
	assert_int_equal(redis_tls_handshake(t), REDIS_TLS_WANT_READ);
	assert_true(BIO_ctrl_pending(wbio) > 0);       /* the ClientHello went out */
	BIO_write(rbio, answer, (int)sizeof(answer) - 1);
	assert_int_equal(redis_tls_handshake(t), REDIS_TLS_ERROR);
	assert_non_null(strstr(redis_tls_error(t), "the server answered in plain text, not TLS"));
	redis_tls_free(t);
	SSL_CTX_free(ctx);
}

static void test_client_certificate(void **state)
{
	struct pair p;
	char c = 0;
	size_t k = 0;
	ssize_t n = 0;

	(void)state;
	/* Without one: TLS 1.3 finishes the client's side; the refusal arrives with the first read. */
	pair_open(&p, pki.ca_file, "redis.test", pki.server, 65536, false, true);
	if (pair_handshake(&p) == 1) {
		for (int i = 0; i < 100 && n != REDIS_TLS_ERROR; i++)
			n = redis_tls_read(p.client, &c, 1);
		assert_int_equal(n, REDIS_TLS_ERROR);
	}
	assert_non_null(strstr(redis_tls_error(p.client), "the server requires a client certificate"));
	pair_close(&p);
	/* With one. */
	pair_open(&p, pki.ca_file, "redis.test", pki.server, 65536, true, true);
	assert_int_equal(pair_handshake(&p), 1);
	assert_int_equal(SSL_write_ex(p.server, "k", 1, &k), 1);
	for (int i = 0; i < 100 && c == 0; i++)
		(void)redis_tls_read(p.client, &c, 1);
	assert_int_equal(c, 'k');
	pair_close(&p);
}

static void test_context_errors(void **state)
{
	char err[512];

	(void)state;
	assert_null(redis_tls_ctx_new(&(struct redis_tls_options){ .ca_file = "/nonexistent/ca" },
				      err, sizeof(err)));
	assert_string_equal(err, "cannot open the CA file /nonexistent/ca: No such file or directory");
	assert_null(redis_tls_ctx_new(&(struct redis_tls_options){ .ca_file = pki.ca_file,
								   .cert_file = pki.client_cert },
				      err, sizeof(err)));
	assert_string_equal(err, "a client certificate needs both cert_file and key_file");
	/* A key that is not the certificate's. */
	assert_null(redis_tls_ctx_new(&(struct redis_tls_options){ .ca_file = pki.ca_file,
								   .cert_file = pki.ca_file,
								   .key_file = pki.client_key_file },
				      err, sizeof(err)));
	assert_non_null(strstr(err, "cannot use the client key"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exchange_split_at_every_byte),
		cmocka_unit_test(test_pending_data_without_socket_data),
		cmocka_unit_test(test_read_wants_write),
		cmocka_unit_test(test_verification_errors),
		cmocka_unit_test(test_ip_address_san),
		cmocka_unit_test(test_plain_text_peer),
		cmocka_unit_test(test_client_certificate),
		cmocka_unit_test(test_context_errors),
	};

	return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
