//! Tests of requests, responses and token checks.
