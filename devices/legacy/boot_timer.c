#include <errno.h>
#include <string.h>
#include <time.h>

#include "devices/legacy/boot_timer.h"

static int boot_timer_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	(void)opaque;
	(void)offset;
	memset(data, 0, len);
	return 0;
}

static int boot_timer_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct boot_timer *t = opaque;
	struct timespec ts;
	uint64_t now, zero = 0;
	void (*written)(void *ctx);

	(void)offset;
	(void)data;
	(void)len;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	if (now <= t->start_ns)
		now = t->start_ns + 1;
	__atomic_compare_exchange_n(&t->boot_ns, &zero, now - t->start_ns, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
	__atomic_add_fetch(&t->writes, 1, __ATOMIC_RELAXED);
	written = __atomic_load_n(&t->written, __ATOMIC_ACQUIRE);
	if (written)
		written(t->written_ctx);
	return 0;
}

const struct bus_device_ops boot_timer_ops = {
	.read = boot_timer_read,
	.write = boot_timer_write,
};

#define BOOT_TIMER_STATE_VERSION 1

void boot_timer__save(struct boot_timer *t, struct blob *b)
{
	size_t at = blob__section(b, "boot-timer", BOOT_TIMER_STATE_VERSION);

	blob__u64(b, __atomic_load_n(&t->boot_ns, __ATOMIC_RELAXED));
	blob__u64(b, __atomic_load_n(&t->writes, __ATOMIC_RELAXED));
	blob__section_end(b, at);
}

int boot_timer__restore(struct boot_timer *t, struct blob_reader *r)
{
	struct blob_reader sub;
	uint64_t boot_ns, writes;
	uint16_t version;

	if (blob__enter(r, "boot-timer", BOOT_TIMER_STATE_VERSION, &version, &sub))
		return -EINVAL;
	boot_ns = blob__get_u64(&sub);
	writes = blob__get_u64(&sub);
	if (blob_reader__done(&sub))
		return blob__fail(r, "boot-timer: %s", sub.why);
	if (boot_ns && !writes)
		return blob__fail(r, "boot-timer: written at %llu ns but never written",
				  (unsigned long long)boot_ns);
	__atomic_store_n(&t->boot_ns, boot_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&t->writes, writes, __ATOMIC_RELAXED);
	return 0;
}
