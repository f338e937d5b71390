/*
 * redis_conn.h — one Redis connection inside an sd-event loop: TCP (host name resolved again on
 * every connection), Unix socket, or TLS over TCP (redis_tls.h). The protocol is hiredis's:
 * redisFormatCommandArgv() for requests, a redisReader for replies (hiredis 0.14 has no TLS,
 * so hiredis is used only as an encoder and parser here; its own I/O is not used).
 *
 * The connection knows nothing about commands and replies beyond framing: replies are handed to
 * on_reply in the order the server sends them; matching them to commands is the caller's job.
 * Commands may be sent before the connection is up; they are queued and go out after the TLS
 * handshake.
 *
 * Callbacks run from the loop, never from inside redis_conn_new/send. A callback may call
 * redis_conn_send and redis_conn_free on its own connection. After on_error the connection is
 * dead: no more callbacks; the caller frees it.
 *
 * Host names are resolved again for every connection, off the loop (resolve.h); the addresses
 * are tried in turn.
 */
#ifndef IVS_REDIS_CONN_H
#define IVS_REDIS_CONN_H

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <systemd/sd-event.h>

struct redis_conn;

struct redis_conn_options {
	const char *host;          /* TCP host name or address, or NULL */
	int port;
	const char *unix_path;     /* wins over host when set */
	SSL_CTX *tls;              /* NULL = plain text */
	const char *server_name;   /* name verified in the certificate; NULL = host */
};

struct redis_conn_callbacks {
	void (*on_connected)(void *ud);                  /* transport (and TLS) up */
	void (*on_reply)(void *ud, redisReply *reply);   /* freed after the call */
	void (*on_error)(void *ud, const char *why);     /* the connection is dead */
};

/*
 * Start connecting (resolving first). NULL with err set when it cannot even start (no memory,
 * no thread for the lookup); later failures, resolution included, come through on_error.
 */
struct redis_conn *redis_conn_new(sd_event *event, const struct redis_conn_options *opts,
				  const struct redis_conn_callbacks *cbs, void *ud,
				  char *err, size_t errlen);

/* Queue one command. 0, -EINVAL, -ENOMEM, -ENOTCONN (dead), -ENOBUFS (output buffer full). */
int redis_conn_send(struct redis_conn *c, int argc, const char **argv, const size_t *argvlen);

/* What the connection is doing, for timeout messages: "TCP connect", "TLS handshake", ... */
const char *redis_conn_phase(const struct redis_conn *c);

/* Close at once; no callback. Safe from inside this connection's callbacks. NULL is a no-op. */
void redis_conn_free(struct redis_conn *c);

/*
 * A hiredis reply reader that refuses array replies of more than 2^20 elements (hiredis 0.14
 * would allocate the element vector of any size a server announces). Free: redisReaderFree.
 * Nesting deeper than 7 levels is refused by hiredis itself.
 */
redisReader *redis_reader_new(void);

/*
 * The reply reader wrapper, separate so it can be tested and fuzzed on its own: feed bytes,
 * collect each complete reply with on_reply (which takes ownership: freeReplyObject).
 * 0, or -EPROTO with err set (the stream is then unusable: hiredis's reader error, or a reply
 * nested deeper than hiredis 0.14 supports).
 */
int redis_reader_feed(redisReader *reader, const char *buf, size_t len,
		      void (*on_reply)(void *ud, redisReply *reply), void *ud,
		      char *err, size_t errlen);

#endif
