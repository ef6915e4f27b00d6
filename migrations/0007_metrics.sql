-- Metrics and alerts (issue 16): relay-wide settings (the refresh interval), alert rules with their
-- sealed channels, the alerts they raise and each notification's delivery record. Per-device
-- series live in each device hub's own SQLite, not here.
CREATE TABLE `alert_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`alert_id` text,
	`rule_id` text,
	`team_id` text,
	`channel_index` integer NOT NULL,
	`channel` text NOT NULL,
	`event` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`response_status` integer,
	`error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer,
	`next_attempt_at` integer,
	FOREIGN KEY (`alert_id`) REFERENCES `alerts`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`rule_id`) REFERENCES `alert_rules`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `alert_deliveries_alert_idx` ON `alert_deliveries` (`alert_id`);--> statement-breakpoint
CREATE INDEX `alert_deliveries_rule_idx` ON `alert_deliveries` (`rule_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `alert_rules` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`metric` text NOT NULL,
	`target` text,
	`warning` real,
	`critical` real,
	`level` text,
	`hold_seconds` integer NOT NULL,
	`recovery_seconds` integer NOT NULL,
	`team_id` text,
	`device_id` text,
	`enabled` integer DEFAULT true NOT NULL,
	`channels_sealed` text,
	`channel_views` text NOT NULL,
	`resend_minutes` integer,
	`resend_cap` integer NOT NULL,
	`quiet_hours` text,
	`created_by` text,
	`created_at` integer NOT NULL,
	`updated_at` integer,
	FOREIGN KEY (`team_id`) REFERENCES `teams`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `alert_rules_team_idx` ON `alert_rules` (`team_id`);--> statement-breakpoint
CREATE INDEX `alert_rules_device_idx` ON `alert_rules` (`device_id`);--> statement-breakpoint
CREATE TABLE `alerts` (
	`id` text PRIMARY KEY NOT NULL,
	`rule_id` text NOT NULL,
	`device_id` text NOT NULL,
	`team_id` text NOT NULL,
	`metric` text NOT NULL,
	`level` text NOT NULL,
	`value` real,
	`threshold` real,
	`message` text NOT NULL,
	`cause` text NOT NULL,
	`state` text NOT NULL,
	`created_at` integer NOT NULL,
	`resolved_at` integer,
	`acknowledged_at` integer,
	`acknowledged_by` text,
	FOREIGN KEY (`rule_id`) REFERENCES `alert_rules`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`acknowledged_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `alerts_team_idx` ON `alerts` (`team_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `alerts_device_idx` ON `alerts` (`device_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `alerts_state_idx` ON `alerts` (`state`,`created_at`);--> statement-breakpoint
CREATE TABLE `settings` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer NOT NULL,
	`updated_by` text,
	FOREIGN KEY (`updated_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
