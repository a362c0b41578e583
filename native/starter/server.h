/* mountat-action --serve: the fork server (server.c documents its requests). */
#ifndef MOUNTAT_STARTER_SERVER_H
#define MOUNTAT_STARTER_SERVER_H

int serve(void);

#endif
