/*
 * Fuzz target: what `faultline bench` reads rather than measures. The
 * test guest's output, which the guest is free to forge
 * (bench__parse_guest()), and a results document given back with
 * --input FILE (bench__validate(), then the ratios, the table and the CSV
 * that are made from it).
 *
 * The first byte picks the reader; the rest is its text.
 *
 * Invariants, beyond "no crash, no sanitizer report": a refusal says why;
 * a guest's sample that is accepted has its operations counted and its
 * percentiles in order; a document that validates renders.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <sys/mman.h>

#include "lib/log.h"
#include "tests/fuzz/fuzz.h"
#include "vmm/cmd/bench.h"

static char csv_path[64];
static FILE *table_out;
static char log_buf[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd = memfd_create("fuzz-csv", 0);

	(void)argc;
	(void)argv;
	log__capture(log_buf, sizeof(log_buf));
	fuzz__check(fd >= 0, "memfd_create");
	snprintf(csv_path, sizeof(csv_path), "/proc/self/fd/%d", fd);
	table_out = fopen("/dev/null", "w");
	fuzz__check(table_out, "cannot open /dev/null");
	return 0;
}

static void guest_output(const char *text)
{
	struct bench_sample s;
	char why[256] = "";

	if (bench__parse_guest(text, &s, why, sizeof(why))) {
		fuzz__check(why[0], "guest output refused without a reason");
		return;
	}
	fuzz__check(bench__percentile(s.hist, s.max_cycles, 50) <=
			    bench__percentile(s.hist, s.max_cycles, 99),
		    "p50 above p99");
	fuzz__check(bench__percentile(s.hist, s.max_cycles, 99) <= s.max_cycles || !s.max_cycles,
		    "p99 above max");
	json_decref(bench__sample_json(&s, 2100000));
}

static void results(const char *text, size_t len)
{
	json_error_t e;
	char why[256] = "";
	json_t *doc = json_loadb(text, len, 0, &e);

	if (!doc)
		return;
	if (bench__validate(doc, why, sizeof(why))) {
		fuzz__check(why[0], "a results document refused without a reason");
	} else {
		bench__add_ratios(json_object_get(doc, "results"));
		bench__print_table(doc, table_out);
		fuzz__check(bench__write_csv(doc, csv_path) == 0, "a valid document gave no CSV");
	}
	json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (!size)
		return 0;
	text = malloc(size);
	fuzz__check(text, "out of memory");
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1)
		guest_output(text);
	else
		results(text, size - 1);
	free(text);
	return 0;
}
