CREATE TABLE `tinypilot_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`device_id` text NOT NULL,
	`team_id` text NOT NULL,
	`name` text NOT NULL,
	`prefix` text NOT NULL,
	`key_hash` text NOT NULL,
	`created_by` text,
	`created_at` integer NOT NULL,
	`last_used_at` integer,
	`revoked_at` integer,
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`team_id`) REFERENCES `teams`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tinypilot_keys_hash_unique` ON `tinypilot_keys` (`key_hash`);--> statement-breakpoint
CREATE INDEX `tinypilot_keys_device_idx` ON `tinypilot_keys` (`device_id`);--> statement-breakpoint
CREATE TABLE `tinypilot_tokens` (
	`token_hash` text PRIMARY KEY NOT NULL,
	`key_id` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	FOREIGN KEY (`key_id`) REFERENCES `tinypilot_keys`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `tinypilot_tokens_key_idx` ON `tinypilot_tokens` (`key_id`,`created_at`);--> statement-breakpoint
-- The operator system role gains the KVM's permissions (admin has "*"); appended, so a list an
-- earlier migration wrote keeps every entry, and a second run adds nothing.
UPDATE `roles` SET `permissions` = json_insert(`permissions`, '$[#]', 'hid:write') WHERE `id` = 'operator' AND `is_system` = 1 AND NOT EXISTS (SELECT 1 FROM json_each(`permissions`) WHERE `value` = 'hid:write');--> statement-breakpoint
UPDATE `roles` SET `permissions` = json_insert(`permissions`, '$[#]', 'screen:read') WHERE `id` = 'operator' AND `is_system` = 1 AND NOT EXISTS (SELECT 1 FROM json_each(`permissions`) WHERE `value` = 'screen:read');
