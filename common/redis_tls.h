/*
 * redis_tls.h — TLS for the Redis transport: OpenSSL, never blocking, with error texts an
 * operator can act on.
 *
 * Policy (not configurable): TLS 1.2 or later; the server's chain is verified against the CA
 * file or the system store; the server name (a DNS name, or an IP address matched against the
 * certificate's IP SANs) is always verified; SNI is sent for DNS names. There is no switch that
 * skips verification.
 *
 * A session is driven by its caller (redis_conn.c) from the event loop: every call returns at
 * once, either with progress or with REDIS_TLS_WANT_READ / REDIS_TLS_WANT_WRITE, after which
 * the caller waits for that readiness and calls again. Two OpenSSL traps are handled here and
 * by the caller's contract:
 *  - a retried write must be given the same bytes again (at the same or a moved address, with
 *    the same or a larger length): the caller only appends to its output buffer and consumes
 *    bytes only after a write reported them written;
 *  - decrypted bytes may wait inside OpenSSL (SSL_pending) with nothing left on the socket:
 *    the caller reads until WANT_READ, never "once per readiness event".
 */
#ifndef IVS_REDIS_TLS_H
#define IVS_REDIS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#define REDIS_TLS_ERROR       (-1)
#define REDIS_TLS_WANT_READ   (-2)
#define REDIS_TLS_WANT_WRITE  (-3)

struct redis_tls_options {
	const char *ca_file;     /* PEM bundle; NULL or "" = the system store */
	const char *cert_file;   /* client certificate chain (mutual TLS), or NULL/"" */
	const char *key_file;    /* its private key, with cert_file */
};

/*
 * A context for all sessions of one configuration. NULL on failure with err set (names the
 * file and OpenSSL's reason). Free with SSL_CTX_free.
 */
SSL_CTX *redis_tls_ctx_new(const struct redis_tls_options *opts, char *err, size_t errlen);

struct redis_tls;

/*
 * A client session that will verify server_name (DNS name or IP address literal). The caller
 * attaches the transport with redis_tls_ssl() (SSL_set_fd, or memory BIOs in tests).
 * NULL on ENOMEM or a name OpenSSL refuses.
 */
struct redis_tls *redis_tls_new(SSL_CTX *ctx, const char *server_name);
void redis_tls_free(struct redis_tls *t);
SSL *redis_tls_ssl(struct redis_tls *t);

/* 1 when the handshake is complete, else REDIS_TLS_WANT_* or REDIS_TLS_ERROR. */
int redis_tls_handshake(struct redis_tls *t);

/*
 * Bytes read (> 0), 0 at the end of the stream (the peer closed), or REDIS_TLS_WANT_* /
 * REDIS_TLS_ERROR. A read may want the socket writable (WANT_WRITE) and a write readable.
 */
ssize_t redis_tls_read(struct redis_tls *t, void *buf, size_t len);
/* Bytes written (> 0, possibly fewer than len) or REDIS_TLS_WANT_* / REDIS_TLS_ERROR. */
ssize_t redis_tls_write(struct redis_tls *t, const void *buf, size_t len);

/* Decrypted bytes buffered inside OpenSSL, readable without touching the socket. */
size_t redis_tls_pending(const struct redis_tls *t);

/*
 * Why the last call returned REDIS_TLS_ERROR, for the operator: "server certificate is signed
 * by an unknown CA ...", "certificate is for a.example, not b.example", "the server answered in
 * plain text, not TLS ...", "the server requires a client certificate ...". Never a secret.
 */
const char *redis_tls_error(const struct redis_tls *t);

/* true once the handshake has completed on this session. */
bool redis_tls_established(const struct redis_tls *t);

#endif
