/*
 * Fuzz target: what `faultline run --restore DIR` reads before it trusts a
 * snapshot: the manifest (snapshot__parse_manifest()) and a vCPU's state
 * section (vcpu__parse_state()).
 *
 * The input is the manifest's text, a NUL, then the bytes of a state blob.
 *
 * Invariants, beyond "no crash, no sanitizer report": an accepted manifest
 * describes a VM the monitor can build (RAM, vCPUs and budget within their
 * limits), and every refusal prints a message.
 */
#define _GNU_SOURCE
#include <string.h>

#include "lib/blob.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz.h"
#include "vmm/kvm/kvm_state.h"
#include "vmm/vm/snapshot.h"

static char log_buf[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log__capture(log_buf, sizeof(log_buf));
	return 0;
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
		blob_reader__init(&r, nul + 1, size - text_len - 1);
		ret = vcpu__parse_state(&r, 0, 4096);
		fuzz__check(!ret || r.err, "a vCPU state refused (%d) without a reason", ret);
	}
	return 0;
}
