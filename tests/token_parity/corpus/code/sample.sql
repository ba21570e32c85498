SELECT u.id, u.email, COUNT(o.id) AS orders, SUM(o.total_cents) / 100.0 AS revenue
FROM users AS u
LEFT JOIN orders AS o ON o.user_id = u.id AND o.created_at >= NOW() - INTERVAL '30 days'
WHERE u.email LIKE '%@example.com'
GROUP BY u.id, u.email
HAVING COUNT(o.id) > 0
ORDER BY revenue DESC NULLS LAST
LIMIT 50;
