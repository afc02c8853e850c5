/*
 * referral - referral codes, a two-level referral tree, points, badges and
 * a live leaderboard (replaces Refwave). See README.md next to this file
 * for the routes, the events and the snapshot rule clients follow.
 *
 * This file: the descriptor, the config keys, and init, which refuses a
 * bad rewards config and registers the signup step, topics and routes.
 */
#include <stdio.h>

#include "referral_util.h"

extern const weft_migration weft_plugin_migrations[];

static const weft_config_key ref_config[] = {
    {"points_direct", WEFT_CFG_INT, "10", 0, 1000000,
     "points per account you referred"},
    {"points_second", WEFT_CFG_INT, "3", 0, 1000000,
     "points per account your referrals referred"},
    {"badges", WEFT_CFG_STRING, "1:First friend,5:Connector,10:Ambassador,"
                                "25:Legend",
     0, 0, "THRESHOLD:NAME,... by direct referrals, thresholds increasing"},
    {NULL, 0, NULL, 0, 0, NULL}};

/* Route table: one place to read what the plugin serves. */
static const struct {
    const char *method, *pattern;
    unsigned flags;
    weft_handler_fn fn;
} ref_routes[] = {
    {"GET", "/api/referral/me", WEFT_ROUTE_USER | WEFT_ROUTE_NO_BODY, ref_me},
    {"GET", "/api/referral/referrals", WEFT_ROUTE_USER | WEFT_ROUTE_NO_BODY,
     ref_referrals},
    {"POST", "/api/referral/claim", WEFT_ROUTE_USER, ref_claim},
    {"GET", "/api/referral/leaderboard", WEFT_ROUTE_NO_BODY, ref_leaderboard},
    {"GET", "/api/referral/admin/accounts",
     WEFT_ROUTE_ADMIN | WEFT_ROUTE_NO_BODY, ref_admin_accounts},
    {"GET", "/api/referral/admin/export.csv",
     WEFT_ROUTE_ADMIN | WEFT_ROUTE_NO_BODY, ref_admin_export},
};

static int ref_init(weft_plugin *p)
{
    struct ref_rewards rw;
    char why[200];
    size_t i;
    int rc;

    if (ref_rewards_load(p, &rw, why, sizeof(why)) != 0) {
        weft_plugin_fail(p, "%s", why);
        return WEFT_ERR;
    }
    rc = weft_on_signup(p, ref_signup_step, NULL);
    if (rc != WEFT_OK) {
        weft_plugin_fail(p, "%s",
                         rc == WEFT_ENOSYS
                             ? "needs a host with signup steps (SDK 1.3)"
                             : "cannot register the signup step");
        return WEFT_ERR;
    }
    /* referral.user.<id>: only that user; the leaderboard: anyone. */
    if (weft_topic(p, "referral.user.*", WEFT_TOPIC_OWNER, NULL) != WEFT_OK ||
        weft_topic(p, "referral.leaderboard", WEFT_TOPIC_PUBLIC, NULL) !=
            WEFT_OK) {
        weft_plugin_fail(p, "cannot declare the topics");
        return WEFT_ERR;
    }
    for (i = 0; i < sizeof(ref_routes) / sizeof(ref_routes[0]); i++)
        if (weft_route(p, ref_routes[i].method, ref_routes[i].pattern,
                       ref_routes[i].flags, ref_routes[i].fn) != WEFT_OK) {
            weft_plugin_fail(p, "cannot register %s %s", ref_routes[i].method,
                             ref_routes[i].pattern);
            return WEFT_ERR;
        }
    return WEFT_OK;
}

static const weft_plugin_desc ref_desc = {
    WEFT_DESC_HEADER,
    .name = "referral",
    .version = "1.0.0",
    .summary = "referral codes, two-level rewards and a live leaderboard",
    .config = ref_config,
    .init = ref_init,
    .migrations = weft_plugin_migrations,
    /* the web widget, built from web/widgets/referral by make */
    .assets = "referral.web",
};

WEFT_PLUGIN(ref_desc)
