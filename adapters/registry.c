#include <string.h>

#include "adapter.h"

/* One entry per provider file; the list is empty until the adapters land. */
static const adapter_ops_t *const adapter_registry[] = {
	NULL,
};

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
