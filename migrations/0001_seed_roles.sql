-- The three system roles. Custom roles are added through /api/v1/roles.
INSERT INTO roles (id, name, description, permissions, is_system) VALUES
  ('admin', 'Administrator', 'Full system access', '["*"]', 1),
  ('operator', 'Operator', 'Uses and controls devices, tunnels and automation; cannot manage users', '["dashboard:view","devices:read","devices:write","devices:control","tunnels:*","runs:*","metrics:read","alerts:*","logs:read","api-keys:own"]', 1),
  ('viewer', 'Viewer', 'Read-only access', '["dashboard:view","devices:read","tunnels:read","runs:read","metrics:read","alerts:read","logs:read","api-keys:own"]', 1);
