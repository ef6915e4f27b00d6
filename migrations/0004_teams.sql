CREATE TABLE `audit_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`actor_id` text,
	`actor_name` text DEFAULT '' NOT NULL,
	`credential` text NOT NULL,
	`credential_id` text,
	`action` text NOT NULL,
	`target_type` text DEFAULT '' NOT NULL,
	`target_id` text,
	`team_id` text,
	`ip` text DEFAULT '' NOT NULL,
	`details` text
);
--> statement-breakpoint
CREATE INDEX `audit_at_idx` ON `audit_log` (`at`);--> statement-breakpoint
CREATE INDEX `audit_team_idx` ON `audit_log` (`team_id`,`id`);--> statement-breakpoint
CREATE INDEX `audit_actor_idx` ON `audit_log` (`actor_id`,`id`);--> statement-breakpoint
CREATE TABLE `device_tags` (
	`device_id` text NOT NULL,
	`name` text NOT NULL,
	`color` text NOT NULL,
	PRIMARY KEY(`device_id`, `name`),
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `login_challenges` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`token_hash` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `login_challenges_hash_unique` ON `login_challenges` (`token_hash`);--> statement-breakpoint
CREATE TABLE `recovery_codes` (
	`user_id` text NOT NULL,
	`code_hash` text NOT NULL,
	`used_at` integer,
	PRIMARY KEY(`user_id`, `code_hash`),
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `team_invitations` (
	`id` text PRIMARY KEY NOT NULL,
	`team_id` text NOT NULL,
	`invitee` text NOT NULL,
	`role` text NOT NULL,
	`token_hash` text NOT NULL,
	`prefix` text NOT NULL,
	`invited_by` text,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`accepted_at` integer,
	`accepted_by` text,
	`revoked_at` integer,
	FOREIGN KEY (`team_id`) REFERENCES `teams`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`invited_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `team_invitations_hash_unique` ON `team_invitations` (`token_hash`);--> statement-breakpoint
CREATE INDEX `team_invitations_team_idx` ON `team_invitations` (`team_id`);--> statement-breakpoint
CREATE TABLE `team_members` (
	`team_id` text NOT NULL,
	`user_id` text NOT NULL,
	`role` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`team_id`, `user_id`),
	FOREIGN KEY (`team_id`) REFERENCES `teams`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `team_members_user_idx` ON `team_members` (`user_id`);--> statement-breakpoint
CREATE TABLE `teams` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`require_2fa` integer DEFAULT false NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `teams_name_unique` ON `teams` (lower("name"));--> statement-breakpoint
CREATE TABLE `variables` (
	`id` text PRIMARY KEY NOT NULL,
	`level` text NOT NULL,
	`user_id` text,
	`team_id` text,
	`device_id` text,
	`name` text NOT NULL,
	`secret` integer NOT NULL,
	`value` text,
	`sealed` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`team_id`) REFERENCES `teams`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `variables_owner_name_unique` ON `variables` (`level`,coalesce(`user_id`, `team_id`, `device_id`),`name`);--> statement-breakpoint
CREATE INDEX `variables_team_idx` ON `variables` (`team_id`);--> statement-breakpoint
CREATE INDEX `variables_device_idx` ON `variables` (`device_id`);--> statement-breakpoint
CREATE INDEX `variables_user_idx` ON `variables` (`user_id`);--> statement-breakpoint
-- Devices and enrollment tokens gain a team. SQLite cannot add a NOT NULL column that references
-- another table, and rebuilding `devices` would cascade-delete its tunnels when the old table is
-- dropped, so the column is added nullable, every existing row is given the first admin's team
-- below, and triggers refuse a NULL from now on (the schema declares it NOT NULL for drizzle).
ALTER TABLE `devices` ADD `team_id` text REFERENCES teams(id);--> statement-breakpoint
ALTER TABLE `devices` ADD `updated_at` integer;--> statement-breakpoint
CREATE INDEX `devices_team_idx` ON `devices` (`team_id`);--> statement-breakpoint
ALTER TABLE `enrollment_tokens` ADD `team_id` text REFERENCES teams(id) ON DELETE cascade;--> statement-breakpoint
ALTER TABLE `users` ADD `name` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `timezone` text DEFAULT 'UTC' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `email_verified` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `totp_secret` text;--> statement-breakpoint
ALTER TABLE `users` ADD `totp_enabled_at` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `totp_last_step` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `updated_at` integer;--> statement-breakpoint
-- An existing install: one team, "Default", owned by the first admin (the oldest user holding the
-- admin role, else the oldest user), with every existing user a member, so nobody loses sight of
-- a device they could see before; every device and enrollment token joins it.
INSERT INTO `teams` (`id`, `name`, `require_2fa`, `created_at`, `updated_at`)
SELECT lower(hex(randomblob(20))), 'Default', 0, CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000
WHERE EXISTS (SELECT 1 FROM `users`) OR EXISTS (SELECT 1 FROM `devices`) OR EXISTS (SELECT 1 FROM `enrollment_tokens`);--> statement-breakpoint
INSERT INTO `team_members` (`team_id`, `user_id`, `role`, `created_at`)
SELECT (SELECT `id` FROM `teams` LIMIT 1), u.`id`,
  CASE WHEN u.`id` = (
    SELECT f.`id` FROM `users` f
    ORDER BY EXISTS (SELECT 1 FROM json_each(f.`roles`) WHERE `value` = 'admin') DESC, f.`created_at`, f.`id` LIMIT 1
  ) THEN 'owner' ELSE 'member' END,
  CAST(strftime('%s', 'now') AS INTEGER) * 1000
FROM `users` u WHERE EXISTS (SELECT 1 FROM `teams`);--> statement-breakpoint
UPDATE `devices` SET `team_id` = (SELECT `id` FROM `teams` LIMIT 1) WHERE `team_id` IS NULL;--> statement-breakpoint
UPDATE `enrollment_tokens` SET `team_id` = (SELECT `id` FROM `teams` LIMIT 1) WHERE `team_id` IS NULL;--> statement-breakpoint
CREATE TRIGGER `devices_team_required_insert` BEFORE INSERT ON `devices` WHEN NEW.`team_id` IS NULL
BEGIN SELECT RAISE(ABORT, 'devices.team_id may not be NULL'); END;--> statement-breakpoint
CREATE TRIGGER `devices_team_required_update` BEFORE UPDATE OF `team_id` ON `devices` WHEN NEW.`team_id` IS NULL
BEGIN SELECT RAISE(ABORT, 'devices.team_id may not be NULL'); END;--> statement-breakpoint
CREATE TRIGGER `enrollment_tokens_team_required_insert` BEFORE INSERT ON `enrollment_tokens` WHEN NEW.`team_id` IS NULL
BEGIN SELECT RAISE(ABORT, 'enrollment_tokens.team_id may not be NULL'); END;--> statement-breakpoint
CREATE TRIGGER `enrollment_tokens_team_required_update` BEFORE UPDATE OF `team_id` ON `enrollment_tokens` WHEN NEW.`team_id` IS NULL
BEGIN SELECT RAISE(ABORT, 'enrollment_tokens.team_id may not be NULL'); END;--> statement-breakpoint
-- The system roles gain the permissions of what this migration adds.
UPDATE `roles` SET `permissions` = '["dashboard:view","devices:read","devices:write","devices:control","tunnels:*","runs:*","metrics:read","alerts:*","logs:read","api-keys:own","teams:read","teams:write","variables:read","variables:write","devices:admin","audit:read"]' WHERE `id` = 'operator' AND `is_system` = 1;--> statement-breakpoint
UPDATE `roles` SET `permissions` = '["dashboard:view","devices:read","tunnels:read","runs:read","metrics:read","alerts:read","logs:read","api-keys:own","teams:read","variables:read"]' WHERE `id` = 'viewer' AND `is_system` = 1;
