/*
 * trackgate-token - mints a tracking link for an order: a JWT as trackgated
 * checks it (see gateway/auth.h), signed HS256 with a shared secret or ES256
 * with an EC private key, for ops and the demo.
 *
 *   trackgate-token --key-file PATH [--alg HS256|ES256] [--kid KID]
 *                   [--ttl SECONDS] [--nbf UNIX] [--base-url URL] ORDER_ID
 *
 * Prints the token, or with --base-url the link URL/t/ORDER_ID?token=...
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>

#include "proto.h"

static void token_usage(FILE *f)
{
	fprintf(f, "usage: trackgate-token --key-file PATH [--alg HS256|ES256] [--kid KID]\n"
		   "                      [--ttl SECONDS] [--nbf UNIX] [--base-url URL] ORDER_ID\n"
		   "Mints a tracking-link token (JWT) for ORDER_ID.\n"
		   "  --key-file  HS256: the shared secret (a trailing newline is dropped);\n"
		   "              ES256: a PEM EC private key (P-256)\n"
		   "  --alg       HS256 (default) or ES256\n"
		   "  --kid       the key id trackgated knows the key by ([token-key.KID])\n"
		   "  --ttl       seconds until it expires (default 86400)\n"
		   "  --nbf       not valid before this unix time\n"
		   "  --base-url  print URL/t/ORDER_ID?token=TOKEN instead of the bare token\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key-file", required_argument, NULL, 'k'}, {"alg", required_argument, NULL, 'a'},
	    {"kid", required_argument, NULL, 'i'},	{"ttl", required_argument, NULL, 't'},
	    {"nbf", required_argument, NULL, 'n'},	{"base-url", required_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},		{NULL, 0, NULL, 0},
	};
	const char *key_file = NULL, *alg = "HS256", *kid = NULL, *base = NULL, *id;
	long ttl = 86400, nbf = 0;
	unsigned char key[8192];
	size_t key_len;
	jwt_t *jwt = NULL;
	char *token;
	FILE *f;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key_file = optarg;
			break;
		case 'a':
			alg = optarg;
			break;
		case 'i':
			kid = optarg;
			break;
		case 't':
			ttl = strtol(optarg, NULL, 10);
			break;
		case 'n':
			nbf = strtol(optarg, NULL, 10);
			break;
		case 'b':
			base = optarg;
			break;
		case 'h':
			token_usage(stdout);
			return 0;
		default:
			token_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || !key_file || ttl <= 0 ||
	    (strcmp(alg, "HS256") && strcmp(alg, "ES256"))) {
		token_usage(stderr);
		return 2;
	}
	id = argv[optind];
	if (!proto_order_id_valid(id, strlen(id))) {
		fprintf(stderr, "trackgate-token: '%s' is not a valid order id\n", id);
		return 2;
	}
	f = fopen(key_file, "rb");
	if (!f) {
		fprintf(stderr, "trackgate-token: cannot read %s: %s\n", key_file, strerror(errno));
		return 1;
	}
	key_len = fread(key, 1, sizeof(key) - 1, f);
	fclose(f);
	if (!strcmp(alg, "HS256"))
		while (key_len && (key[key_len - 1] == '\n' || key[key_len - 1] == '\r'))
			key_len--;
	key[key_len] = '\0';
	if (jwt_new(&jwt) || jwt_add_grant(jwt, "order_id", id) ||
	    jwt_add_grant_int(jwt, "iat", (long)time(NULL)) ||
	    jwt_add_grant_int(jwt, "exp", (long)time(NULL) + ttl) ||
	    (nbf && jwt_add_grant_int(jwt, "nbf", nbf)) ||
	    (kid && jwt_add_header(jwt, "kid", kid)) ||
	    jwt_set_alg(jwt, !strcmp(alg, "HS256") ? JWT_ALG_HS256 : JWT_ALG_ES256, key,
			(int)key_len)) {
		fprintf(stderr,
			"trackgate-token: cannot build the token (is the key right for %s?)\n",
			alg);
		jwt_free(jwt);
		return 1;
	}
	token = jwt_encode_str(jwt);
	jwt_free(jwt);
	if (!token) {
		fprintf(stderr,
			"trackgate-token: cannot sign the token (is the key right for %s?)\n", alg);
		return 1;
	}
	if (base)
		printf("%s/t/%s?token=%s\n", base, id, token);
	else
		printf("%s\n", token);
	free(token);
	return 0;
}
