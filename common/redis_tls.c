/*
 * redis_tls.c — see redis_tls.h.
 *
 * Error texts come from three places, in this order of preference: what our verify callback
 * saw (the certificate's own names for a name mismatch), the chain verification result, and
 * the reason code of OpenSSL's last error (wrong record version = a plain-text peer; alerts
 * "certificate required" / "handshake failure" = mutual TLS expected).
 */
#include "redis_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

struct redis_tls {
	SSL *ssl;
	char *server_name;
	bool established;
	bool have_client_cert;
	long verify_error;          /* first X509_V_ERR_* our callback saw, or X509_V_OK */
	char cert_names[160];       /* the leaf certificate's names, for a mismatch message */
	char error[320];
};

static int app_data_index = -1;

/* OpenSSL's reason for the most recent error in the queue, as text. */
static void openssl_reason(char *out, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	const char *reason = ERR_reason_error_string(e);

	if (e == 0)
		snprintf(out, len, "unknown TLS error");
	else if (reason != NULL)
		snprintf(out, len, "%s", reason);
	else
		ERR_error_string_n(e, out, len);
}

/* A missing or unreadable file, said plainly (OpenSSL's own text for it is cryptic). */
static bool readable(const char *path, const char *what, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(err, errlen, "cannot open %s %s: %s", what, path, strerror(errno));
		return false;
	}
	fclose(f);
	return true;
}

SSL_CTX *redis_tls_ctx_new(const struct redis_tls_options *opts, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	char why[200];
	bool have_ca = opts->ca_file != NULL && opts->ca_file[0] != '\0';
	bool have_cert = opts->cert_file != NULL && opts->cert_file[0] != '\0';
	bool have_key = opts->key_file != NULL && opts->key_file[0] != '\0';

	ERR_clear_error();
	if (app_data_index < 0)
		app_data_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || app_data_index < 0) {
		snprintf(err, errlen, "cannot create a TLS context (out of memory?)");
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot require TLS 1.2 or later");
		goto fail;
	}
	/* Writes: partial results, and a retry may pass the same bytes from a moved buffer. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (have_ca && !readable(opts->ca_file, "the CA file", err, errlen))
		goto fail;
	if (have_ca ? SSL_CTX_load_verify_locations(ctx, opts->ca_file, NULL) != 1
		    : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		openssl_reason(why, sizeof(why));
		snprintf(err, errlen, "cannot load the CA certificates from %s: %s",
			 have_ca ? opts->ca_file : "the system store", why);
		goto fail;
	}
	if (have_cert != have_key) {
		snprintf(err, errlen, "a client certificate needs both cert_file and key_file");
		goto fail;
	}
	if (have_cert && (!readable(opts->cert_file, "the client certificate", err, errlen) ||
			  !readable(opts->key_file, "the client key", err, errlen)))
		goto fail;
	if (have_cert) {
		if (SSL_CTX_use_certificate_chain_file(ctx, opts->cert_file) != 1) {
			openssl_reason(why, sizeof(why));
			snprintf(err, errlen, "cannot load the client certificate %s: %s",
				 opts->cert_file, why);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, opts->key_file, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			openssl_reason(why, sizeof(why));
			snprintf(err, errlen, "cannot use the client key %s: %s", opts->key_file, why);
			goto fail;
		}
	}
	ERR_clear_error();
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* Names the leaf certificate is for: its DNS and IP SANs, else its CN. */
static void describe_names(X509 *cert, char *out, size_t len)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	size_t used = 0;
	int n = sans != NULL ? sk_GENERAL_NAME_num(sans) : 0;

	out[0] = '\0';
	for (int i = 0; i < n && used + 1 < len; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		char ip[INET6_ADDRSTRLEN] = "";
		const char *name = NULL;
		int w;

		if (gn->type == GEN_DNS) {
			name = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
		} else if (gn->type == GEN_IPADD) {
			int l = ASN1_STRING_length(gn->d.iPAddress);
			const unsigned char *p = ASN1_STRING_get0_data(gn->d.iPAddress);
			if (inet_ntop(l == 4 ? AF_INET : AF_INET6, p, ip, sizeof(ip)) != NULL &&
			    (l == 4 || l == 16))
				name = ip;
		}
		if (name == NULL)
			continue;
		w = snprintf(out + used, len - used, "%s%s", used ? ", " : "", name);
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	GENERAL_NAMES_free(sans);
	if (used == 0) {
		X509_NAME *subject = X509_get_subject_name(cert);
		if (subject == NULL ||
		    X509_NAME_get_text_by_NID(subject, NID_commonName, out, (int)len) < 0)
			snprintf(out, len, "(no names)");
	}
}

static int verify_callback(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct redis_tls *t = ssl != NULL ? SSL_get_ex_data(ssl, app_data_index) : NULL;
	int e = X509_STORE_CTX_get_error(store);

	if (t == NULL || ok || t->verify_error != X509_V_OK)
		return ok;
	t->verify_error = e;
	if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH) {
		X509 *leaf = X509_STORE_CTX_get_current_cert(store);
		if (leaf != NULL)
			describe_names(leaf, t->cert_names, sizeof(t->cert_names));
	}
	return ok;
}

static bool is_ip_literal(const char *name)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

struct redis_tls *redis_tls_new(SSL_CTX *ctx, const char *server_name)
{
	struct redis_tls *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->verify_error = X509_V_OK;
	t->have_client_cert = SSL_CTX_get0_certificate(ctx) != NULL;
	t->server_name = strdup(server_name);
	t->ssl = SSL_new(ctx);
	if (t->server_name == NULL || t->ssl == NULL ||
	    SSL_set_ex_data(t->ssl, app_data_index, t) != 1)
		goto fail;
	SSL_set_verify(t->ssl, SSL_VERIFY_PEER, verify_callback);
	if (is_ip_literal(server_name)) {
		/* No SNI for addresses (RFC 6066); the certificate must carry the IP SAN. */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name) != 1)
			goto fail;
	} else if (SSL_set_tlsext_host_name(t->ssl, server_name) != 1 ||
		   SSL_set1_host(t->ssl, server_name) != 1) {
		goto fail;
	}
	ERR_clear_error();
	return t;
fail:
	ERR_clear_error();
	redis_tls_free(t);
	return NULL;
}

void redis_tls_free(struct redis_tls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	free(t->server_name);
	free(t);
}

SSL *redis_tls_ssl(struct redis_tls *t)
{
	return t->ssl;
}

bool redis_tls_established(const struct redis_tls *t)
{
	return t->established;
}

const char *redis_tls_error(const struct redis_tls *t)
{
	return t->error[0] != '\0' ? t->error : "TLS error";
}

size_t redis_tls_pending(const struct redis_tls *t)
{
	int n = SSL_pending(t->ssl);

	return n > 0 ? (size_t)n : 0;
}

static void describe_verify_failure(struct redis_tls *t, long v)
{
	const char *what = X509_verify_cert_error_string(v);

	switch (v) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(t->error, sizeof(t->error), "certificate is for %s, not %s",
			 t->cert_names[0] ? t->cert_names : "other names", t->server_name);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(t->error, sizeof(t->error), "the server certificate has expired");
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(t->error, sizeof(t->error), "the server certificate is not valid yet");
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		snprintf(t->error, sizeof(t->error),
			 "the server certificate is signed by an unknown CA (%s; check redis.tls.ca_file)",
			 what);
		break;
	default:
		snprintf(t->error, sizeof(t->error), "the server certificate was refused: %s", what);
		break;
	}
}

/* Map an SSL_get_error() outcome to our return codes, describing errors. */
static int outcome(struct redis_tls *t, int ret, int saved_errno)
{
	int e = SSL_get_error(t->ssl, ret);
	unsigned long last;
	int reason;
	char why[200];

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return REDIS_TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return REDIS_TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		break;
	}
	last = ERR_peek_last_error();
	reason = ERR_GET_REASON(last);
	if (t->verify_error != X509_V_OK) {
		describe_verify_failure(t, t->verify_error);
	} else if (e == SSL_ERROR_SYSCALL && last == 0) {
		if (saved_errno != 0)
			snprintf(t->error, sizeof(t->error), "%s%s (errno %d)",
				 t->established ? "" : "during the TLS handshake: ",
				 strerror(saved_errno), saved_errno);
		else
			snprintf(t->error, sizeof(t->error), "the server closed the connection%s",
				 t->established ? "" : " during the TLS handshake");
	} else if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
		   reason == SSL_R_RECORD_LENGTH_MISMATCH) {
		snprintf(t->error, sizeof(t->error),
			 "the server answered in plain text, not TLS (a plain-text server behind rediss://?)");
	} else if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
		   reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
		   (reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE && !t->have_client_cert)) {
		snprintf(t->error, sizeof(t->error),
			 t->have_client_cert ? "the server refused our client certificate"
					     : "the server requires a client certificate "
					       "(set redis.tls.cert_file and redis.tls.key_file)");
	} else if (ERR_GET_LIB(last) == ERR_LIB_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		snprintf(t->error, sizeof(t->error), "the server closed the connection%s",
			 t->established ? "" : " during the TLS handshake");
	} else {
		openssl_reason(why, sizeof(why));
		snprintf(t->error, sizeof(t->error), "TLS error: %s", why);
	}
	ERR_clear_error();
	/* SSL_R_UNEXPECTED_EOF_WHILE_READING after the handshake is a plain end of stream. */
	return REDIS_TLS_ERROR;
}

int redis_tls_handshake(struct redis_tls *t)
{
	int r;

	if (t->established)
		return 1;
	ERR_clear_error();
	errno = 0;
	r = SSL_connect(t->ssl);
	if (r == 1) {
		t->established = true;
		return 1;
	}
	return outcome(t, r, errno);
}

ssize_t redis_tls_read(struct redis_tls *t, void *buf, size_t len)
{
	size_t got = 0;
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(t->ssl, buf, len, &got);
	if (r == 1)
		return (ssize_t)got;
	return outcome(t, 0, errno);
}

ssize_t redis_tls_write(struct redis_tls *t, const void *buf, size_t len)
{
	size_t done = 0;
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_write_ex(t->ssl, buf, len, &done);
	if (r == 1)
		return (ssize_t)done;
	r = outcome(t, 0, errno);
	if (r == 0) {
		snprintf(t->error, sizeof(t->error), "the server closed the connection");
		return REDIS_TLS_ERROR;
	}
	return r;
}
