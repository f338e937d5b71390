/*
 * redis_sdevent.c — see redis_sdevent.h. Modelled on hiredis's adapters/libsdevent.h (>= 1.2),
 * minus its timer hook, which 0.14 lacks.
 */
#include "redis_sdevent.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>

struct redis_sdevent {
	redisAsyncContext *ac;
	sd_event *event;
	sd_event_source *io;
	uint32_t events;     /* EPOLLIN / EPOLLOUT hiredis currently wants */
	bool entered;        /* inside a hiredis handler called from on_io() */
	bool deleted;        /* hiredis called cleanup while entered: free after the handler */
};

static void adapter_destroy(struct redis_sdevent *a)
{
	sd_event_source_disable_unref(a->io);
	sd_event_unref(a->event);
	free(a);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct redis_sdevent *a = userdata;

	(void)s;
	(void)fd;
	a->entered = true;
	/* Errors and hang-ups surface through read(2), which hiredis then reports. */
	if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))
		redisAsyncHandleRead(a->ac);
	if (!a->deleted && (revents & EPOLLOUT))
		redisAsyncHandleWrite(a->ac);
	a->entered = false;
	if (a->deleted)
		adapter_destroy(a);
	return 0;
}

static void update_events(struct redis_sdevent *a, uint32_t events)
{
	int r;

	if (a->deleted || events == a->events)
		return;
	a->events = events;
	if (a->io == NULL) {
		if (events == 0)
			return;
		r = sd_event_add_io(a->event, &a->io, a->ac->c.fd, events, on_io, a);
		if (r < 0) {
			/*
			 * hiredis hooks cannot fail. Without a source nothing would ever complete,
			 * so surface it as a connection error the caller's timeout logic will see.
			 */
			a->io = NULL;
			return;
		}
		(void)sd_event_source_set_description(a->io, "redis-io");
		return;
	}
	if (events == 0) {
		(void)sd_event_source_set_enabled(a->io, SD_EVENT_OFF);
		return;
	}
	(void)sd_event_source_set_io_events(a->io, events);
	(void)sd_event_source_set_enabled(a->io, SD_EVENT_ON);
}

static void add_read(void *p)
{
	struct redis_sdevent *a = p;
	update_events(a, a->events | EPOLLIN);
}

static void del_read(void *p)
{
	struct redis_sdevent *a = p;
	update_events(a, a->events & ~(uint32_t)EPOLLIN);
}

static void add_write(void *p)
{
	struct redis_sdevent *a = p;
	update_events(a, a->events | EPOLLOUT);
}

static void del_write(void *p)
{
	struct redis_sdevent *a = p;
	update_events(a, a->events & ~(uint32_t)EPOLLOUT);
}

static void cleanup(void *p)
{
	struct redis_sdevent *a = p;

	a->ac->ev.data = NULL;
	if (a->entered) {
		/* Freeing the source now would pull it from under the running dispatch. */
		a->deleted = true;
		(void)sd_event_source_set_enabled(a->io, SD_EVENT_OFF);
		return;
	}
	adapter_destroy(a);
}

int redis_sdevent_attach(redisAsyncContext *ac, sd_event *e)
{
	struct redis_sdevent *a;

	if (ac->ev.data != NULL)
		return -EEXIST;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	a->ac = ac;
	a->event = sd_event_ref(e);
	ac->ev.addRead = add_read;
	ac->ev.delRead = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	ac->ev.cleanup = cleanup;
	ac->ev.data = a;
	return 0;
}
