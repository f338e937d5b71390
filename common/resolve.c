/*
 * resolve.c — see resolve.h.
 *
 * The lookup's state is shared by the loop and the thread under one mutex: the thread sets
 * done (and signals the eventfd unless the loop has abandoned the lookup); whoever comes second
 * (the thread finding abandoned, or the loop finding done) frees it.
 */
#include "resolve.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct lookup {
	pthread_mutex_t lock;
	bool done, abandoned;
	int efd;
	char *host;
	char port[16];
	struct addrinfo *result;
	int gai_err, sys_errno;
};

struct resolve {
	sd_event_source *io;
	struct lookup *lookup;
	resolve_cb *cb;
	void *ud;
};

static void lookup_free(struct lookup *lk)
{
	if (lk->result != NULL)
		freeaddrinfo(lk->result);
	if (lk->efd >= 0)
		close(lk->efd);
	pthread_mutex_destroy(&lk->lock);
	free(lk->host);
	free(lk);
}

static void *lookup_thread(void *arg)
{
	struct lookup *lk = arg;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL;
	int r, e;
	bool abandoned;

	errno = 0;
	r = getaddrinfo(lk->host, lk->port, &hints, &res);
	e = errno;
	pthread_mutex_lock(&lk->lock);
	lk->result = r == 0 ? res : NULL;
	lk->gai_err = r;
	lk->sys_errno = e;
	lk->done = true;
	abandoned = lk->abandoned;
	if (!abandoned) {
		uint64_t one = 1;
		if (write(lk->efd, &one, sizeof(one)) < 0) {
			/* An eventfd write fails only on overflow, impossible with one write. */
		}
	}
	pthread_mutex_unlock(&lk->lock);
	if (abandoned)
		lookup_free(lk);
	return NULL;
}

static int on_ready(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct resolve *r = userdata;
	struct lookup *lk = r->lookup;
	struct addrinfo *res;
	resolve_cb *cb = r->cb;
	void *ud = r->ud;
	int gai_err, sys_errno;
	bool done;

	(void)s;
	(void)fd;
	(void)revents;
	pthread_mutex_lock(&lk->lock);
	done = lk->done;
	res = lk->result;
	lk->result = NULL;
	gai_err = lk->gai_err;
	sys_errno = lk->sys_errno;
	pthread_mutex_unlock(&lk->lock);
	if (!done)
		return 0;    /* not possible: the thread writes only once done */
	sd_event_source_disable_unref(r->io);
	lookup_free(lk);
	free(r);
	cb(ud, res, gai_err, sys_errno);
	return 0;
}

struct resolve *resolve_start(sd_event *event, const char *host, int port, resolve_cb *cb,
			      void *ud)
{
	struct resolve *r = calloc(1, sizeof(*r));
	struct lookup *lk = calloc(1, sizeof(*lk));
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all, old;
	int e = ENOMEM;

	if (r == NULL || lk == NULL)
		goto fail_alloc;
	lk->efd = -1;
	lk->host = strdup(host);
	if (lk->host == NULL || pthread_mutex_init(&lk->lock, NULL) != 0)
		goto fail_alloc;
	snprintf(lk->port, sizeof(lk->port), "%d", port);
	lk->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (lk->efd < 0) {
		e = errno;
		goto fail;
	}
	r->lookup = lk;
	r->cb = cb;
	r->ud = ud;
	e = -sd_event_add_io(event, &r->io, lk->efd, EPOLLIN, on_ready, r);
	if (e > 0)
		goto fail;
	(void)sd_event_source_set_description(r->io, "resolve");
	/* The thread takes no signal: they are the loop's (signalfd). */
	sigfillset(&all);
	if (pthread_attr_init(&attr) != 0) {
		e = ENOMEM;
		goto fail;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&thread, &attr, lookup_thread, lk);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (e != 0)
		goto fail;
	return r;
fail:
	sd_event_source_disable_unref(r->io);
	lookup_free(lk);
	free(r);
	errno = e;
	return NULL;
fail_alloc:
	if (lk != NULL) {
		free(lk->host);
		free(lk);
	}
	free(r);
	errno = ENOMEM;
	return NULL;
}

void resolve_cancel(struct resolve *r)
{
	struct lookup *lk;
	bool done;

	if (r == NULL)
		return;
	lk = r->lookup;
	sd_event_source_disable_unref(r->io);
	pthread_mutex_lock(&lk->lock);
	done = lk->done;
	lk->abandoned = true;
	pthread_mutex_unlock(&lk->lock);
	if (done)
		lookup_free(lk);
	free(r);
}
