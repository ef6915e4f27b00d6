CREATE TABLE `tunnels` (
	`id` text PRIMARY KEY NOT NULL,
	`device_id` text NOT NULL,
	`name` text NOT NULL,
	`kind` text NOT NULL,
	`target_host` text NOT NULL,
	`target_port` integer NOT NULL,
	`access` text DEFAULT 'public' NOT NULL,
	`basic_user` text,
	`basic_password_hash` text,
	`bearer_token_hash` text,
	`bearer_prefix` text,
	`rate_limit_per_minute` integer,
	`enabled` integer DEFAULT true NOT NULL,
	`connected` integer DEFAULT true NOT NULL,
	`allow_clientless` integer DEFAULT true NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tunnels_name_unique` ON `tunnels` (`name`);--> statement-breakpoint
CREATE INDEX `tunnels_device_idx` ON `tunnels` (`device_id`);