/*
 * libFuzzer: arbitrary bytes as certconnd.json text, as a key-role policy and as net's part.
 * Beyond "no crash, no leak", it checks three properties:
 *  - a failed load says where: the message starts with the file name;
 *  - a config that loads gives a net_json that net loads back to the same values;
 *  - the position index agrees with cJSON: on every text cJSON accepts (and that nests at
 *    most CC_JCK_MAX_DEPTH deep) the index builds and every value of cJSON's tree has an entry.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certconn/config.h"
#include "certconn/policy.h"
#include "jsonck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
walk(const struct cc_jck *j, const struct cc_jnode *n)
{
	struct cc_jnode c;
	const cJSON *it;
	uint32_t i = 0, line, col;
	size_t count = 1;

	if (cc_jck_pos(j, n, &line, &col) != 0 || line == 0 || col == 0)
		abort();
	for (it = n->item->child; it != NULL; it = it->next, i++) {
		c = (struct cc_jnode){ it, n, i, cJSON_IsObject(n->item) ? it->string : NULL };
		count += walk(j, &c);
	}
	return count;
}

static void
check_index(const char *text, size_t len)
{
	struct cc_jck j;
	struct cc_jnode root;
	const char *why = NULL;
	size_t off;

	if (memchr(text, '\0', len) != NULL)
		return;
	memset(&j, 0, sizeof(j));
	j.name = "fuzz";
	j.text = text;
	j.len = len;
	j.root = cJSON_ParseWithLengthOpts(text, len + 1, NULL, 1);
	if (j.root == NULL)
		return;
	if (cc_jck_index_build(text, len, &j.ix, &off, &why) == -1) {
		if (strcmp(why, "nested deeper than 64 levels") != 0)
			abort();
	} else {
		root = (struct cc_jnode){ j.root, NULL, 0, NULL };
		if (walk(&j, &root) != j.ix.n)
			abort();
	}
	cc_jck_done(&j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cc_config c;
	struct cc_config_net n;
	struct cc_policy p;
	char err[1024];
	char *text;

	if (size > CC_JCK_MAX_TEXT + 1)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	check_index(text, size);

	if (cc_config_load_buf(text, size, "fuzz.json", &c, err, sizeof(err)) == 0) {
		if (cc_config_load_net(c.net_json, &n, err, sizeof(err)) != 0 ||
		    memcmp(&n, &c.net, sizeof(n)) != 0)
			abort();
		cc_config_net_free(&n);
		cc_config_free(&c);
	} else if (strncmp(err, "fuzz.json:", 10) != 0) {
		abort();
	}

	if (cc_policy_load_buf(text, size, "fuzz.json", &p, err, sizeof(err)) == -1 &&
	    strncmp(err, "fuzz.json:", 10) != 0)
		abort();

	/* net reads a C string. */
	if (cc_config_load_net(text, &n, err, sizeof(err)) == 0)
		cc_config_net_free(&n);
	else if (strncmp(err, "(net config):", 13) != 0)
		abort();

	free(text);
	return 0;
}
