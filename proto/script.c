#include "script.h"

#include <stdio.h>
#include <string.h>

void proto_keys_for(const char *order_id, proto_keys_t *out)
{
	snprintf(out->channel, sizeof(out->channel), "trk:{%s}", order_id);
	snprintf(out->state, sizeof(out->state), "trk:{%s}:state", order_id);
	snprintf(out->log, sizeof(out->log), "trk:{%s}:log", order_id);
	snprintf(out->seen, sizeof(out->seen), "trk:{%s}:seen", order_id);
}

void proto_poll_keys_for(const char *order_id, proto_poll_keys_t *out)
{
	snprintf(out->source, sizeof(out->source), "trk:{%s}:source", order_id);
	snprintf(out->lease, sizeof(out->lease), "trk:{%s}:poll_lease", order_id);
}

const char *proto_channel_order_id(const char *channel, size_t channel_len, size_t *len)
{
	if (channel_len < 7 || memcmp(channel, "trk:{", 5) != 0 || channel[channel_len - 1] != '}')
		return NULL;
	if (!proto_order_id_valid(channel + 5, channel_len - 6))
		return NULL;
	*len = channel_len - 6;
	return channel + 5;
}
