/*
 * Fuzz target: what `faultline run --restore DIR` reads before it trusts a
 * snapshot: the manifest (snapshot__parse_manifest()) and a vCPU's state
 * section (vcpu__parse_state()), and the state blobs of the virtio devices
 * (virtio_mmio__restore() under virtio-blk, virtio_balloon__restore(),
 * virtio_console__restore()), and the working-set recording a restore
 * prefetches (ws__decode()).
 *
 * The input is the manifest's text, a NUL, then the bytes of a state blob,
 * read as each of those in turn, and as DIR/ws.
 *
 * Invariants, beyond "no crash, no sanitizer report": an accepted manifest
 * describes a VM the monitor can build (RAM, vCPUs and budget within their
 * limits), an accepted recording holds distinct pages inside RAM, and
 * every refusal prints a message or says why.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "lib/blob.h"
#include "devices/virtio/virtio_balloon.h"
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_console.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz.h"
#include "vmm/kvm/kvm_state.h"
#include "vmm/vm/snapshot.h"
#include "vmm/vm/ws.h"

static char log_buf[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log__capture(log_buf, sizeof(log_buf));
	return 0;
}

/* The bytes as DIR/ws of a snapshot with no id and 16 MiB of RAM. */
static void fuzz_ws(const uint8_t *buf, size_t len)
{
	char why[WS_WHY_LEN] = "";
	struct ws_info info;
	uint32_t *pages;
	uint64_t i, j;
	int ret = ws__decode(buf, len, "", 4096, &info, &pages, why);

	fuzz__check(!ret || why[0], "a recording refused (%d) without a reason", ret);
	for (i = 0; !ret && i < info.count; i++) {
		fuzz__check((pages[i] & ~MMU_WS_WRITTEN) < 4096, "accepted page %u", pages[i]);
		for (j = 0; j < i && info.count < 64; j++)
			fuzz__check((pages[i] ^ pages[j]) & ~MMU_WS_WRITTEN,
				    "accepted page %u twice", pages[i]);
	}
	free(pages);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t text_len = nul ? (size_t)(nul - data) : size;
	struct snapshot s = {.dir = "fuzz"};
	struct blob_reader r;
	int ret;

	log_buf[0] = '\0';
	ret = snapshot__parse_manifest(&s, (const char *)data, text_len);
	if (!ret) {
		fuzz__check(s.mem >= VM_MEM_MIN && s.mem <= VM_MEM_MAX && !(s.mem % VM_MEM_ALIGN),
			    "accepted %llu bytes of RAM", (unsigned long long)s.mem);
		fuzz__check(s.vcpus >= 1 && s.vcpus <= VM_VCPUS_MAX, "accepted %u vCPUs", s.vcpus);
		fuzz__check(s.limit_pages >= 1 && s.limit_pages <= s.mem / MMU_PAGE_SIZE,
			    "accepted a budget of %llu pages", (unsigned long long)s.limit_pages);
	} else {
		fuzz__check(log_buf[0], "refused (%d) without a message", ret);
	}
	snapshot__close(&s);
	if (nul) {
		static struct virtio_blk blk = {.fd = -1, .capacity = 2048};
		static struct virtio_balloon bal;
		static struct virtio_console con;
		const uint8_t *state = nul + 1;
		size_t len = size - text_len - 1;

		blob_reader__init(&r, state, len);
		ret = vcpu__parse_state(&r, 0, 4096);
		fuzz__check(!ret || r.err, "a vCPU state refused (%d) without a reason", ret);
		fuzz__check(virtio_mmio__init(&blk.mmio, &virtio_blk_ops, &blk,
					      (struct guest_access){0}, 0xc0000000, 5, NULL,
					      NULL) == 0,
			    "virtio_mmio__init");
		blob_reader__init(&r, state, len);
		ret = virtio_mmio__restore(&blk.mmio, &r);
		fuzz__check(!ret || r.err, "a transport state refused without a reason");
		fuzz__check(ret || (blk.mmio.q[0].num & (blk.mmio.q[0].num - 1)) == 0,
			    "a queue of %u entries taken", blk.mmio.q[0].num);
		virtio_mmio__exit(&blk.mmio);
		fuzz__check(virtio_mmio__init(&bal.mmio, &virtio_balloon_ops, &bal,
					      (struct guest_access){0}, 0xc0001000, 6, NULL,
					      NULL) == 0,
			    "virtio_mmio__init");
		blob_reader__init(&r, state, len);
		ret = virtio_balloon__restore(&bal, &r);
		fuzz__check(ret || bal.stats_head < VIRTQ_SIZE_MAX || !bal.stats_held,
			    "a held buffer at %u taken", bal.stats_head);
		virtio_mmio__exit(&bal.mmio);
		memset(&con, 0, sizeof(con));
		con.listen_fd = con.peer_fd = con.kick_fd = con.stop_fd = -1;
		fuzz__check(virtio_mmio__init(&con.mmio, &virtio_console_ops, &con,
					      (struct guest_access){0}, 0xc0002000, 7, NULL,
					      NULL) == 0,
			    "virtio_mmio__init");
		blob_reader__init(&r, state, len);
		ret = virtio_console__restore(&con, &r);
		fuzz__check(!ret || r.err, "a channel state refused without a reason");
		fuzz__check(con.nr_ctrl <= VIRTIO_CONSOLE_CTRL_MAX &&
				    con.rx_len <= VIRTIO_CONSOLE_RX_BUF,
			    "took %u control messages, %u held bytes", con.nr_ctrl, con.rx_len);
		virtio_mmio__exit(&con.mmio);
		fuzz_ws(state, len);
	}
	return 0;
}
