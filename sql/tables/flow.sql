-- pgqrs: flow control. The deliveries of a rate-limited workflow (pgqrs.dequeue writes a row per delivery, counts
-- those of its window and removes them a minute after they have left it): the limit counts them.
create table if not exists pgqrs.rate_limit_log (
    queue_id bigint not null references pgqrs.queues (queue_id),
    delivered_at timestamptz not null
);
comment on table pgqrs.rate_limit_log is
'Deliveries of rate-limited workflows within their period (pgqrs.dequeue): at most rate_limit.limit per queue.';
create index if not exists rate_limit_log_queue_idx on pgqrs.rate_limit_log (queue_id, delivered_at);
