/* noentry - a shared object without weft_plugin_entry(). */
int noentry_something(void);
__attribute__((visibility("default"))) int noentry_something(void)
{
    return 42;
}
