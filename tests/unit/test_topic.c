/* Topic names and NATS-style wildcard matching. */
#include "topic.h"
#include "unit.h"

START_TEST(valid_topics)
{
    ck_assert_int_eq(wtopic_valid("chat.room.42", 0), 1);
    ck_assert_int_eq(wtopic_valid("todo.user.7", 0), 1);
    ck_assert_int_eq(wtopic_valid("a", 0), 1);
    ck_assert_int_eq(wtopic_valid("a-b_c:d@e~f", 0), 1);
    ck_assert_int_eq(wtopic_valid("", 0), 0);
    ck_assert_int_eq(wtopic_valid(NULL, 0), 0);
    ck_assert_int_eq(wtopic_valid(".a", 0), 0);
    ck_assert_int_eq(wtopic_valid("a.", 0), 0);
    ck_assert_int_eq(wtopic_valid("a..b", 0), 0);
    ck_assert_int_eq(wtopic_valid("a b", 0), 0);
    ck_assert_int_eq(wtopic_valid("caf\xc3\xa9", 0), 0);
    ck_assert_int_eq(wtopic_valid("a.*", 0), 0); /* wildcards: patterns only */
    ck_assert_int_eq(wtopic_valid("a.>", 0), 0);
}
END_TEST

START_TEST(valid_patterns)
{
    ck_assert_int_eq(wtopic_valid("a.*", 1), 1);
    ck_assert_int_eq(wtopic_valid("*.b.*", 1), 1);
    ck_assert_int_eq(wtopic_valid("a.>", 1), 1);
    ck_assert_int_eq(wtopic_valid(">", 1), 1);
    ck_assert_int_eq(wtopic_valid("a.>.b", 1), 0); /* '>' only last */
    ck_assert_int_eq(wtopic_valid("a.b*", 1), 0);  /* whole tokens only */
    ck_assert_int_eq(wtopic_valid("a.*b", 1), 0);
    ck_assert_int_eq(wtopic_valid("a.>>", 1), 0);
}
END_TEST

START_TEST(length_limit)
{
    char s[WTOPIC_MAX + 2];

    memset(s, 'a', sizeof(s));
    s[WTOPIC_MAX] = '\0';
    ck_assert_int_eq(wtopic_valid(s, 0), 1);
    s[WTOPIC_MAX] = 'a';
    s[WTOPIC_MAX + 1] = '\0';
    ck_assert_int_eq(wtopic_valid(s, 0), 0);
}
END_TEST

START_TEST(matching)
{
    ck_assert_int_eq(wtopic_match("chat.room.42", "chat.room.42"), 1);
    ck_assert_int_eq(wtopic_match("chat.room.42", "chat.room.4"), 0);
    ck_assert_int_eq(wtopic_match("chat.room.4", "chat.room.42"), 0);
    ck_assert_int_eq(wtopic_match("chat.room.*", "chat.room.42"), 1);
    ck_assert_int_eq(wtopic_match("chat.room.*", "chat.room"), 0);
    ck_assert_int_eq(wtopic_match("chat.room.*", "chat.room.42.x"), 0);
    ck_assert_int_eq(wtopic_match("chat.*.42", "chat.room.42"), 1);
    ck_assert_int_eq(wtopic_match("chat.>", "chat.room.42"), 1);
    ck_assert_int_eq(wtopic_match("chat.>", "chat.room"), 1);
    ck_assert_int_eq(wtopic_match("chat.>", "chat"), 0); /* one or more */
    ck_assert_int_eq(wtopic_match(">", "anything.at.all"), 1);
    ck_assert_int_eq(wtopic_match("*", "one"), 1);
    ck_assert_int_eq(wtopic_match("*", "one.two"), 0);
    ck_assert_int_eq(wtopic_match("a.b", "a.bc"), 0);
    ck_assert_int_eq(wtopic_match("a.bc", "a.b"), 0);
}
END_TEST

START_TEST(covering)
{
    ck_assert_int_eq(wtopic_covers("todo.user.*", "todo.user.7"), 1);
    ck_assert_int_eq(wtopic_covers("todo.user.*", "todo.user.*"), 1);
    ck_assert_int_eq(wtopic_covers("todo.>", "todo.user.*"), 1);
    ck_assert_int_eq(wtopic_covers("todo.>", "todo.>"), 1);
    ck_assert_int_eq(wtopic_covers("todo.user.*", "todo.>"), 0);
    ck_assert_int_eq(wtopic_covers("todo.user.7", "todo.user.*"), 0);
    ck_assert_int_eq(wtopic_covers("todo.*.7", "todo.user.7"), 1);
    ck_assert_int_eq(wtopic_covers("todo.user.*", "todo.user.7.x"), 0);
}
END_TEST

static Suite *topic_suite(void)
{
    Suite *s = suite_create("topic");
    TCase *tc = tcase_create("topic");

    tcase_add_test(tc, valid_topics);
    tcase_add_test(tc, valid_patterns);
    tcase_add_test(tc, length_limit);
    tcase_add_test(tc, matching);
    tcase_add_test(tc, covering);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(topic_suite());
}
