/* http_status.h -- the reason phrases of the statuses fulcrum itself writes. */
#ifndef FULCRUM_NET_HTTP_STATUS_H
#define FULCRUM_NET_HTTP_STATUS_H

/* The standard reason phrase of `status` ("Bad Gateway"); "Unknown" for a status neither
 * the proxy nor the admin server ever sends (a test can assert that every status it sends
 * has a phrase). */
const char *http_status_reason(int status);

#endif
