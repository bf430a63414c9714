-- pgqrs._lease_held, the one lease predicate: true only for the current, unexpired token; false, never NULL,
-- for anything missing (so `if not pgqrs._lease_held(...)` lets nothing through); and inlined by the planner,
-- which is why it may go without a pinned search_path (functions_pin_search_path.sql).
begin;
select plan(9);

-- a = the token of the lease, b = another; the lease runs until 00:00:10
select is(pgqrs._lease_held(c.message_token, c.visible_at, c.lease_token, c.at), c.held, c.what)
from (
    values
    ('a', '2030-01-01 00:00:10+00', 'a', '2030-01-01 00:00:00+00', true, 'held'),
    ('a', '2030-01-01 00:00:10+00', 'a', '2030-01-01 00:00:10+00', false, 'expired at its visible_at'),
    ('b', '2030-01-01 00:00:10+00', 'a', '2030-01-01 00:00:00+00', false, 'another token'),
    (null, '2030-01-01 00:00:10+00', 'a', '2030-01-01 00:00:00+00', false, 'no lease on the message (released)'),
    ('a', '2030-01-01 00:00:10+00', null, '2030-01-01 00:00:00+00', false, 'no token given'),
    (null, null, 'a', '2030-01-01 00:00:00+00', false, 'no message (the run finished)'),
    (null, null, null, null, false, 'nothing at all: false, not NULL')
) as v (message_token, visible_at, lease_token, at, held, what)
cross join lateral (
    select
        v.visible_at::timestamptz as visible_at,
        v.at::timestamptz as at,
        v.held,
        v.what,
        case v.message_token
            when 'a' then '00000000-0000-0000-0000-00000000000a'::uuid
            when 'b' then '00000000-0000-0000-0000-00000000000b'::uuid
        end as message_token,
        case v.lease_token when 'a' then '00000000-0000-0000-0000-00000000000a'::uuid end as lease_token
) as c;

create function pg_temp.plan_of(p_query text)
returns text
language plpgsql
as $$
declare
    v_line text;
    v_plan text := '';
begin
    for v_line in execute 'explain (verbose, costs off) ' || p_query loop
        v_plan := v_plan || v_line || E'\n';
    end loop;
    return v_plan;
end
$$;
select doesnt_match(
    pg_temp.plan_of(
        'select pgqrs._lease_held(m.lease_token, m.visible_at, gen_random_uuid(), pgqrs.now())'
        || ' from pgqrs.messages as m'
    ),
    '_lease_held',
    'the planner inlines it: no call left in the plan'
);
select matches(
    pg_temp.plan_of(
        'select pgqrs._lease_held(m.lease_token, m.visible_at, gen_random_uuid(), pgqrs.now())'
        || ' from pgqrs.messages as m'
    ),
    'COALESCE',
    'its expression is in the plan instead'
);

select * from finish();
rollback;
