#include <errno.h>
#include <string.h>
#include <time.h>

#include "devices/legacy/cmos.h"

#define CMOS_INDEX_MASK 0x7f /* bit 7 of the index port masks NMIs */
#define REG_STATUS_A	0x0a
#define REG_STATUS_B	0x0b
#define REG_STATUS_D	0x0d
#define REG_CENTURY	0x32
#define STATUS_A_DIV	0x26 /* 32.768 kHz time base, 1024 Hz rate; UIP (bit 7) clear */
#define STATUS_B_24H	0x02 /* BCD, 24-hour mode */
#define STATUS_D_VRT	0x80 /* battery good */

int cmos__init(struct cmos *c)
{
	memset(c, 0, sizeof(*c));
	return -pthread_mutex_init(&c->lock, NULL);
}

void cmos__exit(struct cmos *c)
{
	pthread_mutex_destroy(&c->lock);
}

static uint8_t bcd(int v)
{
	return (uint8_t)((v / 10) << 4 | (v % 10));
}

uint8_t cmos__register(uint8_t reg, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm))
		memset(&tm, 0, sizeof(tm));
	switch (reg) {
	case 0x00: return bcd(tm.tm_sec);
	case 0x02: return bcd(tm.tm_min);
	case 0x04: return bcd(tm.tm_hour);
	case 0x06: return bcd(tm.tm_wday + 1);
	case 0x07: return bcd(tm.tm_mday);
	case 0x08: return bcd(tm.tm_mon + 1);
	case 0x09: return bcd(tm.tm_year % 100);
	case REG_CENTURY: return bcd(19 + tm.tm_year / 100);
	case REG_STATUS_A: return STATUS_A_DIV;
	case REG_STATUS_B: return STATUS_B_24H;
	case REG_STATUS_D: return STATUS_D_VRT;
	default: return 0;
	}
}

static int cmos_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct cmos *c = opaque;
	uint8_t v = 0;

	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (offset == 1)
		v = cmos__register(c->index, (int64_t)time(NULL));
	pthread_mutex_unlock(&c->lock);
	*(uint8_t *)data = v;
	return 0;
}

static int cmos_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct cmos *c = opaque;

	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (offset == 0)
		c->index = *(const uint8_t *)data & CMOS_INDEX_MASK;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

const struct bus_device_ops cmos_ops = {
	.read = cmos_read,
	.write = cmos_write,
};

#define CMOS_STATE_VERSION 1

void cmos__save(struct cmos *c, struct blob *b)
{
	size_t at = blob__section(b, "cmos", CMOS_STATE_VERSION);

	pthread_mutex_lock(&c->lock);
	blob__u8(b, c->index);
	pthread_mutex_unlock(&c->lock);
	blob__section_end(b, at);
}

int cmos__restore(struct cmos *c, struct blob_reader *r)
{
	struct blob_reader sub;
	uint16_t version;
	uint8_t index;

	if (blob__enter(r, "cmos", CMOS_STATE_VERSION, &version, &sub))
		return -EINVAL;
	index = blob__get_u8(&sub);
	if (blob_reader__done(&sub))
		return blob__fail(r, "cmos: %s", sub.why);
	pthread_mutex_lock(&c->lock);
	c->index = index;
	pthread_mutex_unlock(&c->lock);
	return 0;
}
