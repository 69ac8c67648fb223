/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Ask the host to change the VM's memory: the balloon and virtio-mem are
 * driven by scripts/vm/director.py over QMP; the guest reaches it through
 * its second serial port.  One request line, one reply line.
 */
#ifndef MB_HOST_H
#define MB_HOST_H

#include <stddef.h>
#include <stdint.h>

#define MB_HOST_TTY	"/dev/ttyS1"

/*
 * Send REQUEST (without newline) and wait up to timeout_ms for the reply.
 * Returns 0 and the text after "ok " in reply (may be empty) on success,
 * -EREMOTEIO with the host's error text in reply, or -errno.
 */
int mb_host_request(const char *request, char *reply, size_t len,
		    int timeout_ms);

/* True when a director answers "ping". */
int mb_host_available(void);

/* The requests with a numeric argument or answer. */
int mb_host_balloon(uint64_t guest_bytes);
int mb_host_mem_size(uint64_t bytes);
int mb_host_query_mem(uint64_t *bytes);
int mb_host_query_balloon(uint64_t *bytes);

#endif
