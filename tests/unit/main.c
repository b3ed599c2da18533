/*
 * Unit tests (Check). Runs every suite; exits non-zero on any failure.
 * CK_RUN_SUITE / CK_RUN_CASE narrow the run, as Check documents.
 */
#include <stdlib.h>

#include "tests/unit/unit.h"

int main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	int failed;

	srunner_add_suite(sr, elf_suite());
	srunner_add_suite(sr, fdt_suite());
	srunner_add_suite(sr, x86_boot_suite());
	srunner_add_suite(sr, bus_suite());
	srunner_add_suite(sr, devices_suite());
	srunner_add_suite(sr, guest_ram_suite());
	srunner_add_suite(sr, inject_suite());
	srunner_add_suite(sr, gpa_map_suite());
	srunner_add_suite(sr, mmu_suite());
	srunner_add_suite(sr, bar_suite());
	srunner_add_suite(sr, dedup_suite());
	srunner_add_suite(sr, bench_suite());
	srunner_add_suite(sr, linux_suite());
	srunner_add_suite(sr, linux_devices_suite());
	srunner_add_suite(sr, channel_suite());
	srunner_add_suite(sr, api_suite());
	srunner_add_suite(sr, seccomp_suite());
	srunner_add_suite(sr, kvm_stats_suite());
	srunner_add_suite(sr, blob_suite());
	srunner_add_suite(sr, state_suite());
	srunner_add_suite(sr, snapshot_suite());
	srunner_add_suite(sr, page_bits_suite());
	srunner_add_suite(sr, ws_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
