/*
 * The checked-JSON position index (policy/jsonck.c): positions of members and elements, with
 * strings that hide braces, quotes and escapes; columns in characters; refusal of what cJSON
 * would not accept; and agreement with cJSON's tree on every value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jsonck.h"

struct want {
	int32_t parent;
	uint32_t ordinal, line, col;
};

static void
check_index(const char *text, const struct want *w, size_t n)
{
	struct cc_jck_index ix;
	const char *why = NULL;
	size_t off = 0, k;

	assert_int_equal(cc_jck_index_build(text, strlen(text), &ix, &off, &why), 0);
	assert_int_equal(ix.n, n);
	for (k = 0; k < n; k++) {
		assert_int_equal(ix.v[k].parent, w[k].parent);
		assert_int_equal(ix.v[k].ordinal, w[k].ordinal);
		assert_int_equal(ix.v[k].line, w[k].line);
		assert_int_equal(ix.v[k].col, w[k].col);
	}
	cc_jck_index_free(&ix);
}

static void
test_index_positions(void **state)
{
	/* Strings hide braces, brackets, commas, colons, escaped quotes and backslashes. */
	static const char text[] =
	    "{\n"
	    "  \"a{[\\\"\": \"x}],:\\\\\",\n"
	    "  \"b\": [1, {\"c\": null}, [true, \"]\"]],\n"
	    "\t\"d\": {}\n"
	    "}";
	static const struct want w[] = {
		{ -1, 0, 1, 1 },  /* 0: the top-level object */
		{ 0, 0, 2, 3 },   /* 1: "a{[\"" */
		{ 0, 1, 3, 3 },   /* 2: "b" */
		{ 2, 0, 3, 9 },   /* 3: b[0] = 1 */
		{ 2, 1, 3, 12 },  /* 4: b[1] = {...} */
		{ 4, 0, 3, 13 },  /* 5: "c" */
		{ 2, 2, 3, 25 },  /* 6: b[2] = [...] */
		{ 6, 0, 3, 26 },  /* 7: true */
		{ 6, 1, 3, 32 },  /* 8: "]" */
		{ 0, 2, 4, 2 },   /* 9: "d" (after a tab, one column) */
	};

	(void)state;
	check_index(text, w, sizeof(w) / sizeof(w[0]));
}

static void
test_index_columns_and_bom(void **state)
{
	/* Columns count characters: "é" is two bytes, "€" three, one column each. */
	static const struct want w1[] = { { -1, 0, 1, 1 }, { 0, 0, 1, 3 }, { 0, 1, 1, 12 } };
	static const struct want w2[] = { { -1, 0, 1, 1 }, { 0, 0, 2, 1 } };
	static const struct want w3[] = { { -1, 0, 1, 2 } };
	/* A raw newline inside a string (cJSON takes it) still counts as a line. */
	static const struct want w4[] = { { -1, 0, 1, 1 }, { 0, 0, 1, 2 }, { 0, 1, 2, 7 } };

	(void)state;
	check_index("{ \"\xc3\xa9\xe2\x82\xac\": 1, \"z\": 2}", w1, 3);
	check_index("\xEF\xBB\xBF{\r\n\"k\": 0}", w2, 2);
	check_index(" 42", w3, 1);
	check_index("{\"a\n\": 1, \"b\": 2}", w4, 3);
}

static void
test_index_find(void **state)
{
	static const char text[] = "{\"a\": [[1], {\"b\": 2}], \"c\": 3}";
	struct cc_jck_index ix;
	const char *why;
	size_t off;
	int32_t a, a1;

	(void)state;
	assert_int_equal(cc_jck_index_build(text, strlen(text), &ix, &off, &why), 0);
	assert_int_equal(cc_jck_index_find(&ix, -1, 0), 0);
	assert_int_equal(cc_jck_index_find(&ix, -1, 1), -1);
	a = cc_jck_index_find(&ix, 0, 0);
	assert_int_equal(ix.v[a].col, 2);
	a1 = cc_jck_index_find(&ix, a, 1);
	assert_int_equal(ix.v[a1].col, 13);
	assert_int_equal(ix.v[cc_jck_index_find(&ix, a1, 0)].col, 14);
	assert_int_equal(ix.v[cc_jck_index_find(&ix, 0, 1)].col, 24);
	assert_int_equal(cc_jck_index_find(&ix, 0, 2), -1);
	assert_int_equal(cc_jck_index_find(&ix, a, 2), -1);
	cc_jck_index_free(&ix);
}

static void
test_index_refuses(void **state)
{
	static const struct {
		const char *text;
		size_t off;
	} bad[] = {
		{ "", 0 }, { "   ", 3 }, { "{", 1 }, { "}", 0 }, { "[1,2", 4 }, { "{\"a", 3 },
		{ "{\"a\": 1]", 7 }, { "[1] 2", 4 }, { "{1: 2}", 1 }, { "\"ab\\", 4 },
		{ "{\"a\" \"b\"}", 5 },
	};
	struct cc_jck_index ix;
	const char *why;
	char deep[200];
	size_t off, k;

	(void)state;
	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		why = NULL;
		assert_int_equal(cc_jck_index_build(bad[k].text, strlen(bad[k].text), &ix, &off,
		    &why), -1);
		assert_int_equal(off, bad[k].off);
		assert_string_equal(why, "malformed JSON");
		assert_null(ix.v);
		assert_int_equal(ix.n, 0);
	}
	/* 64 levels are fine, 65 are not. */
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	assert_int_equal(cc_jck_index_build(deep, 128, &ix, &off, &why), 0);
	cc_jck_index_free(&ix);
	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	assert_int_equal(cc_jck_index_build(deep, 130, &ix, &off, &why), -1);
	assert_int_equal(off, 64);
	assert_string_equal(why, "nested deeper than 64 levels");
}

static void
test_linecol(void **state)
{
	static const char text[] = "ab\n\xc3\xa9x\n";
	uint32_t line, col;

	(void)state;
	cc_jck_linecol(text, strlen(text), 0, &line, &col);
	assert_true(line == 1 && col == 1);
	cc_jck_linecol(text, strlen(text), 3, &line, &col);
	assert_true(line == 2 && col == 1);
	cc_jck_linecol(text, strlen(text), 5, &line, &col);
	assert_true(line == 2 && col == 2);
	cc_jck_linecol(text, strlen(text), 99, &line, &col);
	assert_true(line == 3 && col == 1);
}

/* Every value of cJSON's tree has a position, and it is where the text says. */
static void
walk(struct cc_jck *j, const struct cc_jnode *n, size_t *count)
{
	struct cc_jnode c;
	const cJSON *it;
	uint32_t i = 0, line, col;

	assert_int_equal(cc_jck_pos(j, n, &line, &col), 0);
	assert_true(line >= 1 && col >= 1);
	(*count)++;
	for (it = n->item->child; it != NULL; it = it->next, i++) {
		if (cJSON_IsObject(n->item))
			c = (struct cc_jnode){ it, n, i, it->string };
		else
			cc_jck_element(n, it, i, &c);
		walk(j, &c, count);
	}
}

static void
test_agrees_with_cjson(void **state)
{
	static const char text[] =
	    "{\"x\": [{\"y\": [1, 2, {\"z\": \"\\\"}\"}]}, [], {}],\n"
	    " \"\\u00e9\": {\"a\": {\"b\": {\"c\": [[[\"deep\"]]]}}}, \"x\": false}";
	struct cc_jck j;
	struct cc_jnode root;
	char err[256];
	size_t count = 0;

	(void)state;
	assert_int_equal(cc_jck_parse(&j, "t.json", text, strlen(text), err, sizeof(err), NULL,
	    &root), 0);
	walk(&j, &root, &count);
	assert_int_equal(count, j.ix.n);
	cc_jck_done(&j);
}

static void
test_checked_readers(void **state)
{
	static const char *const allowed[] = { "s", "n", "b", "arr", NULL };
	static const char text[] =
	    "{\"s\": \"v\", \"n\": 7, \"b\": true,\n"
	    " \"arr\": [\"p\", 3]}";
	struct cc_jck j;
	struct cc_jnode root, m, e;
	char err[256], *str;
	const char *s;
	uint64_t v;
	size_t count;
	bool b;

	(void)state;
	assert_int_equal(cc_jck_parse(&j, "t.json", text, strlen(text), err, sizeof(err), NULL,
	    &root), 0);
	assert_int_equal(cc_jck_object(&j, &root, allowed, 8), 0);
	assert_int_equal(cc_jck_opt_str(&j, &root, "s", "d", 10, &str), 0);
	assert_string_equal(str, "v");
	free(str);
	assert_int_equal(cc_jck_opt_str(&j, &root, "none", "d", 10, &str), 0);
	assert_string_equal(str, "d");
	free(str);
	assert_int_equal(cc_jck_opt_str(&j, &root, "none", NULL, 10, &str), 0);
	assert_null(str);
	assert_int_equal(cc_jck_opt_uint(&j, &root, "n", 1, 0, 10, &v), 0);
	assert_true(v == 7);
	assert_int_equal(cc_jck_opt_uint(&j, &root, "none", 9, 0, 10, &v), 0);
	assert_true(v == 9);
	assert_int_equal(cc_jck_opt_bool(&j, &root, "b", false, &b), 0);
	assert_true(b);
	assert_int_equal(cc_jck_member(&root, "arr", &m), 1);
	assert_int_equal(cc_jck_array(&j, &m, 2, &count), 0);
	assert_int_equal(count, 2);
	cc_jck_element(&m, m.item->child->next, 1, &e);
	assert_false(j.failed);
	/* The first failure is reported; later ones do not overwrite it. */
	assert_int_equal(cc_jck_str(&j, &e, 10, &s), -1);
	assert_string_equal(err, "t.json:2:15: arr[1]: expected a string, found a number");
	assert_int_equal(cc_jck_opt_uint(&j, &root, "n", 1, 0, 5, &v), -1);
	assert_string_equal(err, "t.json:2:15: arr[1]: expected a string, found a number");
	cc_jck_done(&j);

	assert_int_equal(cc_jck_parse(&j, "t.json", text, strlen(text), err, sizeof(err), NULL,
	    &root), 0);
	assert_int_equal(cc_jck_member(&root, "arr", &m), 1);
	assert_int_equal(cc_jck_array(&j, &m, 1, &count), -1);
	assert_string_equal(err, "t.json:2:2: arr: too many elements (at most 1)");
	cc_jck_done(&j);

	assert_int_equal(cc_jck_parse(&j, "t.json", text, strlen(text), err, sizeof(err), NULL,
	    &root), 0);
	assert_int_equal(cc_jck_opt_str(&j, &root, "s", NULL, 0, &str), -1);
	assert_string_equal(err, "t.json:1:2: s: longer than 0 bytes");
	cc_jck_done(&j);

	assert_int_equal(cc_jck_parse(&j, "t.json", text, strlen(text), err, sizeof(err), "top",
	    &root), 0);
	assert_int_equal(cc_jck_fail_missing(&j, &root, "k"), -1);
	assert_string_equal(err, "t.json:1:1: top.k: required key is missing");
	cc_jck_done(&j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_positions),
		cmocka_unit_test(test_index_columns_and_bom),
		cmocka_unit_test(test_index_find),
		cmocka_unit_test(test_index_refuses),
		cmocka_unit_test(test_linecol),
		cmocka_unit_test(test_agrees_with_cjson),
		cmocka_unit_test(test_checked_readers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
