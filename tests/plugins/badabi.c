/* badabi - a plugin built for an ABI major this host does not provide. */
#include <weft/weft.h>

static int badabi_init(weft_plugin *p)
{
    (void)p;
    return WEFT_OK;
}

static const weft_plugin_desc badabi_desc = {
    .abi_major = 99,
    .abi_minor = 0,
    .struct_size = sizeof(weft_plugin_desc),
    .name = "badabi",
    .version = "0.0.1",
    .summary = "refused: wrong ABI major",
    .init = badabi_init,
};

WEFT_PLUGIN(badabi_desc)
