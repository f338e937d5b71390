/*
 * creds_process.c — credential_process: the profile's command, split like a shell would and
 * run without one, its JSON output read within a timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "creds_source.h"

#define MAX_STDERR 4096
#define MAX_ARGS 64
#define PROCESS_TIMEOUT_MS 10000
#define STOP_GRACE_MS 2000

extern char **environ;

/* Split like POSIX shlex (what botocore does): blanks separate, '...' literal, "..." with
 * \" \\ \$ \` escapes, \x outside quotes. No expansion of any kind. */
static int split_command(const char *cmd, char **argv, size_t max, size_t *argc)
{
	const char *s = cmd;
	size_t n = 0;

	*argc = 0;
	while (*s != '\0') {
		char *word, *w;
		int have = 0;
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (*s == '\0')
			break;
		if (n + 1 >= max)
			goto toolong;
		word = w = malloc(strlen(s) + 1);
		if (word == NULL)
			goto nomem;
		argv[n++] = word;
		while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n') {
			have = 1;
			if (*s == '\\') {
				s++;
				if (*s == '\0')
					goto bad;
				*w++ = *s++;
			} else if (*s == '\'') {
				s++;
				while (*s != '\0' && *s != '\'')
					*w++ = *s++;
				if (*s++ != '\'')
					goto bad;
			} else if (*s == '"') {
				s++;
				while (*s != '\0' && *s != '"') {
					if (*s == '\\' && s[1] != '\0' && strchr("\"\\$`", s[1]) != NULL)
						s++;
					*w++ = *s++;
				}
				if (*s++ != '"')
					goto bad;
			} else {
				*w++ = *s++;
			}
		}
		(void)have;
		*w = '\0';
	}
	argv[n] = NULL;
	*argc = n;
	return n == 0 ? -EINVAL : 0;
toolong:
bad:
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	argv[0] = NULL;
	return -EINVAL;
nomem:
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	argv[0] = NULL;
	return -ENOMEM;
}

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read from both pipes until EOF on both or the deadline. Output beyond the caps is an error. */
static int drain_pipes(int outfd, int errfd, struct creds_body *out, char *errbuf, size_t errcap,
		       long long deadline)
{
	size_t errlen = 0;
	int open_out = 1, open_err = 1;

	while (open_out || open_err) {
		struct pollfd pfd[2] = { { open_out ? outfd : -1, POLLIN, 0 },
					 { open_err ? errfd : -1, POLLIN, 0 } };
		long long left = deadline - monotonic_ms();
		char buf[4096];
		ssize_t k;
		if (left <= 0)
			return -ETIMEDOUT;
		int pr = poll(pfd, 2, (int)(left > 1000 ? 1000 : left));
		if (pr < 0 && errno != EINTR)
			return -errno;
		if (pr <= 0)
			continue;
		if (open_out && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			k = read(outfd, buf, sizeof(buf));
			if (k <= 0)
				open_out = k < 0 && errno == EINTR;
			else if (creds_body_write(buf, 1, (size_t)k, out) != (size_t)k)
				return -EFBIG;
		}
		if (open_err && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			k = read(errfd, buf, sizeof(buf));
			if (k <= 0) {
				open_err = k < 0 && errno == EINTR;
			} else if (errlen + 1 < errcap) {
				size_t c = (size_t)k < errcap - 1 - errlen ? (size_t)k : errcap - 1 - errlen;
				memcpy(errbuf + errlen, buf, c);
				errlen += c;
				errbuf[errlen] = '\0';
			}
		}
	}
	return 0;
}

/* SIGTERM, then SIGKILL if the helper is still there after STOP_GRACE_MS. Does not reap. */
static const char *stop_child(pid_t pid)
{
	long long deadline = monotonic_ms() + STOP_GRACE_MS;
	siginfo_t si;

	kill(pid, SIGTERM);
	while (monotonic_ms() < deadline) {
		struct timespec ts = { 0, 20 * 1000000L };
		memset(&si, 0, sizeof(si));
		/* WNOWAIT: leave the zombie for the waitpid() that collects the status. */
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
			return "stopped with SIGTERM";
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	return "killed with SIGKILL (SIGTERM was not enough within 2 s)";
}

int creds_process_fetch(const struct creds_source *src, struct aws_credentials *out, char *why,
			size_t n)
{
	static const struct creds_json_shape shape = { "SessionToken", 0, 0, 1 };
	char *argv[MAX_ARGS + 1] = { 0 };
	char errbuf[MAX_STDERR] = "";
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, status = 0, r;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	struct creds_body body = { 0 };
	size_t argc = 0;
	pid_t pid = -1;

	if ((r = split_command(src->command, argv, MAX_ARGS + 1, &argc)) < 0) {
		snprintf(why, n, "credential_process: cannot split the command line");
		return r;
	}
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		r = -errno;
		snprintf(why, n, "credential_process: pipe: %s", strerror(-r));
		goto out;
	}
	if ((r = -posix_spawn_file_actions_init(&fa)) < 0)
		goto out;
	if ((r = -posix_spawnattr_init(&attr)) < 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto out;
	}
	/* The daemon blocks SIGTERM/SIGINT/SIGHUP (signalfd) and ignores SIGPIPE; the helper
	 * must start as any program does, or a timeout's SIGTERM would not stop it. */
	sigemptyset(&none);
	sigfillset(&all);
	if ((r = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0 &&
	    (r = -posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
	    (r = -posix_spawnattr_setsigdefault(&attr, &all)) == 0 &&
	    (r = -posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
	    (r = -posix_spawn_file_actions_adddup2(&fa, outp[1], 1)) == 0 &&
	    (r = -posix_spawn_file_actions_adddup2(&fa, errp[1], 2)) == 0)
		r = -posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (r < 0) {
		snprintf(why, n, "credential_process: %s: %s", argv[0], strerror(-r));
		pid = -1;
		goto out;
	}
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	r = drain_pipes(outp[0], errp[0], &body, errbuf, sizeof(errbuf),
			monotonic_ms() + PROCESS_TIMEOUT_MS);
	if (r < 0) {
		const char *how = stop_child(pid);
		snprintf(why, n, "credential_process: %s; %s",
			 r == -ETIMEDOUT ? "timed out after 10 s" :
			 r == -EFBIG ? "output larger than 64 KiB" : strerror(-r), how);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			if (r == 0) {
				r = -errno;
				snprintf(why, n, "credential_process: waitpid: %s", strerror(-r));
			}
			goto out;
		}
	}
	if (r < 0)
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errbuf[strcspn(errbuf, "\r\n")] = '\0';
		if (WIFEXITED(status))
			snprintf(why, n, "credential_process: exit status %d%s%.200s",
				 WEXITSTATUS(status), errbuf[0] ? ": " : "", errbuf);
		else
			snprintf(why, n, "credential_process: killed by signal %d",
				 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		r = -EIO;
		goto out;
	}
	if ((r = creds_parse_json(body.data ? body.data : "", body.len, &shape, out, why, n)) < 0) {
		char inner[160];
		snprintf(inner, sizeof(inner), "%s", why);
		snprintf(why, n, "credential_process output: %s", inner);
	}
out:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	for (size_t i = 0; i < argc; i++)
		free(argv[i]);
	creds_body_free(&body);
	return r;
}

