/*
 * request.h -- the "dashscope.Request" userdata: one libcurl easy handle, the
 * header list sent with it, and the capped buffers the response lands in.
 *
 * request.c owns everything in struct ds_request except the three fields of its
 * flight that the transport manages while the request is in flight
 * (flight.transport, prev, next), which it only reads. The flight (transport.h)
 * is all a transport knows of a request: request.c builds on transport.c, never
 * the other way round.
 */
#ifndef DS_REQUEST_H
#define DS_REQUEST_H

#include <stdio.h>

#include <curl/curl.h>
#include <lua.h>

#include "buffer.h"
#include "core.h"
#include "transport.h"

#pragma GCC visibility push(hidden)  /* internal to the module: core.h says why */

enum { DS_REQ_NEW, DS_REQ_PENDING, DS_REQ_DONE, DS_REQ_CLOSED };

/* How a transfer ended (the failure table's "outcome"): DS_OUTCOME_OK when the HTTP exchange
 * completed. */
enum {
  DS_OUTCOME_OK, DS_OUTCOME_TIMEOUT, DS_OUTCOME_RESOLVE, DS_OUTCOME_CONNECT, DS_OUTCOME_SEND,
  DS_OUTCOME_RECV, DS_OUTCOME_TOO_LARGE, DS_OUTCOME_ABORTED, DS_OUTCOME_OTHER, DS_OUTCOME_WRITE,
  DS_OUTCOME_READ
};

/* What a write callback had to refuse (it cannot raise, so it records). */
enum { DS_REFUSED_NONE, DS_REFUSED_BODY, DS_REFUSED_HEADERS, DS_REFUSED_NOMEM, DS_REFUSED_WRITE,
       DS_REFUSED_RESEND, DS_REFUSED_OUTPUT, DS_REFUSED_READ };

/* Where a response body goes when the request has an output file. */
enum { DS_SINK_UNDECIDED, DS_SINK_FILE, DS_SINK_BUFFER };

struct ds_request {
  /* flight.easy: owned; NULL until taken, and once closed (given back). flight.settle is
   * request.c's. flight.transport, prev, next: managed by transport.c while in flight. */
  ds_flight flight;
  struct curl_slist *send_headers;
  curl_mime *form;                /* owned; a multipart body, or NULL */
  int state;                      /* DS_REQ_* */
  int post;                       /* method: 1 POST, 0 GET */

  /* response, filled by the callbacks */
  ds_buffer body;
  ds_buffer head;
  int refused;                    /* DS_REFUSED_* */
  int out_fd;                     /* owned (a dup of spec.output), -1 when none: a 2xx body goes here */
  int sink;                       /* DS_SINK_*: decided at the first body byte */
  int out_errno;                  /* why writing out failed */
  curl_off_t out_bytes;           /* written to out_fd */
  curl_off_t max_out;             /* spec.max_output: more is refused; 0 = no cap */
  int in_errno;                   /* a form's file could not be read as checked (form.h); -1: it changed */
  int progress;                   /* spec.progress: the counters below are kept */
  ds_buffer once_body;            /* spec.once: the body, sent from here, never twice */
  size_t once_off;                /* bytes of once_body handed to libcurl */
  curl_off_t dl_now, dl_total, ul_now, ul_total;

  /* outcome, set once done */
  int outcome;                    /* DS_OUTCOME_* */
  int sent;                       /* could the request have reached the server */
  CURLcode code;
  long status;
  long connects;                  /* CURLINFO_NUM_CONNECTS */
  double total_time;
  double pretransfer_time;        /* CURLINFO_PRETRANSFER_TIME: start to the request's first byte */
  const char *reason;             /* static text for outcome "aborted" */

  char where[96];                 /* "GET http://host/path" for __tostring */
  char errbuf[CURL_ERROR_SIZE];
};

/* Registers the metatable. */
void ds_request_open(lua_State *L);

/* T:request(spec), run by transport.c's T:request (ds_transport_open) with the
 * transport, checked open, at 1: validates spec (arg 2), pushes the request
 * userdata and puts it in flight. Returns 1. */
int ds_request_new(lua_State *L);

#pragma GCC visibility pop

#endif
