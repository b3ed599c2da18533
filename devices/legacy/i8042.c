#include <errno.h>
#include <string.h>

#include "devices/legacy/i8042.h"

#define STATUS_OBF	  0x01
#define STATUS_SYS	  0x04
#define STATUS_CMD	  0x08
#define STATUS_UNLOCKED	  0x10 /* the keyboard is not inhibited by a keylock */
#define CMD_READ_CTR	  0x20
#define CMD_WRITE_CTR	  0x60
#define CMD_SELF_TEST	  0xaa
#define CMD_KBD_TEST	  0xab
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_RESET	  0xfe
#define SELF_TEST_OK	  0x55
#define PORT_TEST_OK	  0x00
#define CTR_DEFAULT	  0x30 /* both ports disabled, no interrupts */

int i8042__init(struct i8042 *k, void (*on_reset)(void *ctx), void *ctx)
{
	memset(k, 0, sizeof(*k));
	k->ctr = CTR_DEFAULT;
	k->on_reset = on_reset;
	k->ctx = ctx;
	return -pthread_mutex_init(&k->lock, NULL);
}

void i8042__exit(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

static void i8042_reply(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->out_full = true;
}

static int i8042_data_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct i8042 *k = opaque;

	(void)offset;
	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data = k->out;
	k->out_full = false;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static int i8042_data_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct i8042 *k = opaque;
	uint8_t v = *(const uint8_t *)data;
	bool reset = false;

	(void)offset;
	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	if (k->pending_cmd == CMD_WRITE_CTR)
		k->ctr = v;
	else if (k->pending_cmd == CMD_WRITE_OUTPORT)
		reset = !(v & 0x01); /* bit 0 low holds the CPU in reset */
	/* Else a byte for the keyboard, which is not there: dropped. */
	k->pending_cmd = 0;
	pthread_mutex_unlock(&k->lock);
	if (reset)
		k->on_reset(k->ctx);
	return 0;
}

static int i8042_status_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct i8042 *k = opaque;

	(void)offset;
	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data =
		(uint8_t)(STATUS_SYS | STATUS_UNLOCKED | (k->pending_cmd ? STATUS_CMD : 0) |
			  (k->out_full ? STATUS_OBF : 0));
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static int i8042_command_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct i8042 *k = opaque;
	uint8_t v = *(const uint8_t *)data;

	(void)offset;
	if (len != 1)
		return -EINVAL;
	if (v == CMD_RESET) {
		k->on_reset(k->ctx);
		return 0;
	}
	pthread_mutex_lock(&k->lock);
	k->pending_cmd = 0;
	switch (v) {
	case CMD_READ_CTR: i8042_reply(k, k->ctr); break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPORT: k->pending_cmd = v; break;
	case CMD_SELF_TEST: i8042_reply(k, SELF_TEST_OK); break;
	case CMD_KBD_TEST: i8042_reply(k, PORT_TEST_OK); break;
	default: break; /* enable/disable a port, and the rest: nothing to do */
	}
	pthread_mutex_unlock(&k->lock);
	return 0;
}

const struct bus_device_ops i8042_data_ops = {
	.read = i8042_data_read,
	.write = i8042_data_write,
};

const struct bus_device_ops i8042_command_ops = {
	.read = i8042_status_read,
	.write = i8042_command_write,
};

#define I8042_STATE_VERSION 1

void i8042__save(struct i8042 *k, struct blob *b)
{
	size_t at = blob__section(b, "i8042", I8042_STATE_VERSION);

	pthread_mutex_lock(&k->lock);
	blob__u8(b, k->ctr);
	blob__u8(b, k->out);
	blob__bool(b, k->out_full);
	blob__u8(b, k->pending_cmd);
	pthread_mutex_unlock(&k->lock);
	blob__section_end(b, at);
}

int i8042__restore(struct i8042 *k, struct blob_reader *r)
{
	struct blob_reader sub;
	uint8_t ctr, out, cmd;
	uint16_t version;
	bool full;

	if (blob__enter(r, "i8042", I8042_STATE_VERSION, &version, &sub))
		return -EINVAL;
	ctr = blob__get_u8(&sub);
	out = blob__get_u8(&sub);
	full = blob__get_bool(&sub);
	cmd = blob__get_u8(&sub);
	if (blob_reader__done(&sub))
		return blob__fail(r, "i8042: %s", sub.why);
	if (cmd && cmd != CMD_WRITE_CTR && cmd != CMD_WRITE_OUTPORT)
		return blob__fail(r, "i8042: command 0x%02x waits for its argument; none does",
				  cmd);
	pthread_mutex_lock(&k->lock);
	k->ctr = ctr;
	k->out = out;
	k->out_full = full;
	k->pending_cmd = cmd;
	pthread_mutex_unlock(&k->lock);
	return 0;
}
