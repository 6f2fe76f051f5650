"""Real S3-compatible servers for the test suite, each started as our own processes on
127.0.0.1 (free ports, config and data under a temp dir) and stopped by PID.

``base``   what every server module shares: :class:`S3Server`, :class:`ServerUnavailable`,
           process groups started and stopped by PID, waiting on a condition
``swift``  OpenStack Swift with ``s3api`` + ``tempauth`` (real SigV4)
``rgw``    Ceph RGW on one mon and one memstore OSD (real SigV4)
``tls``    a TLS front (Python ``ssl``) with a CA made at test time
``pool``   the session's servers: each started on first use, stopped at the end
"""
