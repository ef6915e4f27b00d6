-- The operator system role gains the terminal's and process control's permissions (admin has "*";
-- operator and viewer already hold logs:read). Appended, so a list an earlier migration or an
-- instance admin wrote keeps every entry, and a second run adds nothing.
UPDATE `roles` SET `permissions` = json_insert(`permissions`, '$[#]', 'terminal:open') WHERE `id` = 'operator' AND `is_system` = 1 AND NOT EXISTS (SELECT 1 FROM json_each(`permissions`) WHERE `value` = 'terminal:open');--> statement-breakpoint
UPDATE `roles` SET `permissions` = json_insert(`permissions`, '$[#]', 'terminal:share') WHERE `id` = 'operator' AND `is_system` = 1 AND NOT EXISTS (SELECT 1 FROM json_each(`permissions`) WHERE `value` = 'terminal:share');--> statement-breakpoint
UPDATE `roles` SET `permissions` = json_insert(`permissions`, '$[#]', 'processes:signal') WHERE `id` = 'operator' AND `is_system` = 1 AND NOT EXISTS (SELECT 1 FROM json_each(`permissions`) WHERE `value` = 'processes:signal');
