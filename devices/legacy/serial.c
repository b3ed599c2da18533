#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "devices/legacy/serial.h"
#include "lib/inject.h"

enum {
	UART_RBR_THR = 0, /* DLL when LCR.DLAB */
	UART_IER = 1,	  /* DLM when LCR.DLAB */
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define UART_LCR_DLAB	     0x80
#define UART_IER_RDI	     0x01
#define UART_IER_THRI	     0x02
#define UART_IIR_NO_INT	     0x01
#define UART_IIR_THRI	     0x02
#define UART_IIR_RDI	     0x04
#define UART_IIR_FIFO	     0xc0
#define UART_FCR_ENABLE	     0x01
#define UART_FCR_CLEAR_RX    0x02
#define UART_LSR_DR	     0x01
#define UART_LSR_THRE	     0x20
#define UART_LSR_TEMT	     0x40
#define UART_MCR_LOOP	     0x10
#define UART_MSR_CTS_DSR_DCD 0xb0

int serial__init(struct serial *s, int out_fd)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->out_fd = out_fd;
	s->in_fd = s->stop_fd = -1;
	s->dll = 1; /* 115200 baud */
	ret = pthread_mutex_init(&s->lock, NULL);
	if (ret)
		return -ret;
	ret = pthread_cond_init(&s->rx_room, NULL);
	if (ret)
		pthread_mutex_destroy(&s->lock);
	return -ret;
}

void serial__set_irq(struct serial *s, void (*set_irq)(void *ctx, int level), void *ctx)
{
	pthread_mutex_lock(&s->lock);
	s->set_irq = set_irq;
	s->irq_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
}

/* Caller holds s->lock. Output errors are not the guest's to see. */
static void serial_flush_locked(struct serial *s)
{
	size_t done = 0;

	while (done < s->len) {
		ssize_t n = write(s->out_fd, s->line + done, s->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	s->len = 0;
}

static void serial_stop_input(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	s->input_stopping = true;
	pthread_cond_broadcast(&s->rx_room);
	pthread_mutex_unlock(&s->lock);
	if (s->input_started)
		pthread_join(s->input, NULL);
	s->input_started = false;
}

void serial__flush(struct serial *s)
{
	serial_stop_input(s);
	pthread_mutex_lock(&s->lock);
	serial_flush_locked(s);
	pthread_mutex_unlock(&s->lock);
}

void serial__exit(struct serial *s)
{
	serial__flush(s);
	pthread_cond_destroy(&s->rx_room);
	pthread_mutex_destroy(&s->lock);
}

/* The interrupt identification the 16550 gives, highest priority first. */
static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = s->fcr & UART_FCR_ENABLE ? UART_IIR_FIFO : 0;

	if ((s->ier & UART_IER_RDI) && s->rx_len)
		return fifo | UART_IIR_RDI;
	if ((s->ier & UART_IER_THRI) && s->thr_int)
		return fifo | UART_IIR_THRI;
	return fifo | UART_IIR_NO_INT;
}

/* Caller holds s->lock: set the line to whether an interrupt is pending. */
static void serial_update_irq(struct serial *s)
{
	bool level = !(serial_iir(s) & UART_IIR_NO_INT);

	if (level == s->irq_level || !s->set_irq)
		return;
	s->irq_level = level;
	s->set_irq(s->irq_ctx, level);
}

static void serial_tx(struct serial *s, char c)
{
	s->tx_bytes++;
	s->line[s->len++] = c;
	if (c == '\n' || s->len == sizeof(s->line))
		serial_flush_locked(s);
}

size_t serial__receive(struct serial *s, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_len < SERIAL_RX_MAX) {
		s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_MAX] = b[n++];
		s->rx_len++;
	}
	s->rx_bytes += n;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

static uint8_t serial_rx_pop(struct serial *s)
{
	uint8_t v;

	if (!s->rx_len)
		return 0;
	v = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_RX_MAX;
	s->rx_len--;
	pthread_cond_broadcast(&s->rx_room);
	return v;
}

static uint8_t serial_msr(const struct serial *s)
{
	uint8_t m = s->mcr;

	if (!(m & UART_MCR_LOOP))
		return UART_MSR_CTS_DSR_DCD;
	/* Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
	return (uint8_t)((m & 0x01) << 5 | (m & 0x02) << 3 | (m & 0x04) << 4 | (m & 0x08) << 4);
}

static int serial_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct serial *s = opaque;
	uint8_t v = 0;

	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case UART_RBR_THR: v = s->lcr & UART_LCR_DLAB ? s->dll : serial_rx_pop(s); break;
	case UART_IER: v = s->lcr & UART_LCR_DLAB ? s->dlm : s->ier; break;
	case UART_IIR_FCR:
		v = serial_iir(s);
		if ((v & 0x0f) == UART_IIR_THRI)
			s->thr_int = false; /* reading IIR acknowledges THRE */
		break;
	case UART_LCR: v = s->lcr; break;
	case UART_MCR: v = s->mcr; break;
	case UART_LSR: v = UART_LSR_THRE | UART_LSR_TEMT | (s->rx_len ? UART_LSR_DR : 0); break;
	case UART_MSR: v = serial_msr(s); break;
	case UART_SCR: v = s->scr; break;
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	*(uint8_t *)data = v;
	return 0;
}

static int serial_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct serial *s = opaque;
	uint8_t v = *(const uint8_t *)data;

	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case UART_RBR_THR:
		if (s->lcr & UART_LCR_DLAB) {
			s->dll = v;
		} else {
			serial_tx(s, (char)v);
			s->thr_int = true; /* sent at once: the holding register is empty again */
		}
		break;
	case UART_IER:
		if (s->lcr & UART_LCR_DLAB) {
			s->dlm = v;
			break;
		}
		if ((v & UART_IER_THRI) && !(s->ier & UART_IER_THRI))
			s->thr_int = true;
		s->ier = v & 0x0f;
		serial_flush_locked(s);
		break;
	case UART_IIR_FCR:
		s->fcr = v & UART_FCR_ENABLE;
		if (v & UART_FCR_CLEAR_RX) {
			s->rx_len = 0;
			pthread_cond_broadcast(&s->rx_room);
		}
		break;
	case UART_LCR: s->lcr = v; break;
	case UART_MCR: s->mcr = v & 0x1f; break;
	case UART_SCR: s->scr = v; break;
	default: break; /* read-only LSR/MSR: writes have no effect */
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

const struct bus_device_ops serial_ops = {
	.read = serial_read,
	.write = serial_write,
};

static void *input_thread(void *arg)
{
	struct serial *s = arg;
	uint8_t buf[SERIAL_RX_MAX];

	for (;;) {
		struct pollfd fds[2] = {
			{.fd = s->in_fd, .events = POLLIN},
			{.fd = s->stop_fd, .events = POLLIN},
		};
		size_t room, done = 0;
		ssize_t n;

		pthread_mutex_lock(&s->lock);
		while (s->rx_len == SERIAL_RX_MAX && !s->input_stopping)
			pthread_cond_wait(&s->rx_room, &s->lock);
		room = SERIAL_RX_MAX - s->rx_len;
		if (s->input_stopping) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		pthread_mutex_unlock(&s->lock);
		if (poll(fds, 2, 200) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (s->gate && !s->gate(s->gate_ctx))
			break; /* input typed during a pause waits in the host's pipe */
		n = read(s->in_fd, buf, room);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* end of input: the guest just sees no more */
		while (done < (size_t)n)
			done += serial__receive(s, buf + done, (size_t)n - done);
	}
	return NULL;
}

int serial__start_input(struct serial *s, int in_fd, int stop_fd)
{
	int ret = inject__check("pthread_create.serial");

	s->in_fd = in_fd;
	s->stop_fd = stop_fd;
	s->input_stopping = false;
	ret = ret ?: pthread_create(&s->input, NULL, input_thread, s);
	if (ret)
		return -ret;
	s->input_started = true;
	return 0;
}

#define SERIAL_STATE_VERSION 1

void serial__save(struct serial *s, struct blob *b)
{
	size_t at = blob__section(b, "serial", SERIAL_STATE_VERSION);
	unsigned i;

	pthread_mutex_lock(&s->lock);
	blob__u8(b, s->ier);
	blob__u8(b, s->lcr);
	blob__u8(b, s->mcr);
	blob__u8(b, s->scr);
	blob__u8(b, s->dll);
	blob__u8(b, s->dlm);
	blob__u8(b, s->fcr);
	blob__bool(b, s->thr_int);
	blob__u16(b, (uint16_t)s->rx_len);
	for (i = 0; i < s->rx_len; i++)
		blob__u8(b, s->rx[(s->rx_head + i) % SERIAL_RX_MAX]);
	pthread_mutex_unlock(&s->lock);
	blob__section_end(b, at);
}

int serial__restore(struct serial *s, struct blob_reader *r)
{
	uint8_t reg[7], rx[SERIAL_RX_MAX];
	struct blob_reader sub;
	uint16_t version, n;
	bool thr_int;

	if (blob__enter(r, "serial", SERIAL_STATE_VERSION, &version, &sub))
		return -EINVAL;
	blob__get_bytes(&sub, reg, sizeof(reg));
	thr_int = blob__get_bool(&sub);
	n = blob__get_u16(&sub);
	if (n > SERIAL_RX_MAX)
		return blob__fail(r, "serial: %u bytes of input, it holds %d", n, SERIAL_RX_MAX);
	blob__get_bytes(&sub, rx, n);
	if (blob_reader__done(&sub))
		return blob__fail(r, "serial: %s", sub.why);
	pthread_mutex_lock(&s->lock);
	s->ier = reg[0] & 0x0f; /* the bits a 16550 has */
	s->lcr = reg[1];
	s->mcr = reg[2] & 0x1f;
	s->scr = reg[3];
	s->dll = reg[4];
	s->dlm = reg[5];
	s->fcr = reg[6];
	s->thr_int = thr_int;
	memcpy(s->rx, rx, n);
	s->rx_head = 0;
	s->rx_len = n;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
