#include <string.h>

#include "adapters_private.h"

/* One entry per provider file, one per line (clang-format would pack them). */
/* clang-format off */
static const adapter_ops_t *const adapter_registry[] = {
    &adapter_uber_direct,
    &adapter_doordash_drive,
    &adapter_wolt_drive,
    &adapter_onfleet,
    &adapter_stuart,
    &adapter_opendelivery,
    &adapter_rappi,
    NULL,
};
/* clang-format on */

const adapter_ops_t *adapter_find(const char *name)
{
	for (size_t i = 0; adapter_registry[i]; i++)
		if (strcmp(adapter_registry[i]->name, name) == 0)
			return adapter_registry[i];
	return NULL;
}

const adapter_ops_t *const *adapter_all(void)
{
	return adapter_registry;
}

const char *adapter_ignored_reply(const adapter_ops_t *adapter)
{
	return adapter == &adapter_rappi ? adapter_rappi_ignored_reply : NULL;
}
