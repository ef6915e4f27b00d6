// What a device reports about itself: the facts sent at enrollment and in `hello`, the live
// `device_info` RPC result and the `process_list` RPC result. Units: bytes, percent (0-100), °C.
import { z } from 'zod';

/** Hardware and OS facts that rarely change; registered at enrollment and refreshed on hello. */
export const DeviceFactsSchema = z.object({
  hostname: z.string().max(255),
  serial: z.string().max(64),
  hardware: z.string().max(128),
  os: z.string().max(64),
  os_version: z.string().max(128),
  architecture: z.string().max(32),
  mac_address: z.string().max(32),
  kernel: z.string().max(128).optional(),
});
export type DeviceFacts = z.infer<typeof DeviceFactsSchema>;

export const DiskSchema = z.object({
  mount: z.string(),
  device: z.string(),
  fstype: z.string(),
  total: z.number().int().nonnegative(),
  used: z.number().int().nonnegative(),
  available: z.number().int().nonnegative(),
  percent_free: z.number(),
});
export type Disk = z.infer<typeof DiskSchema>;

export const DeviceInfoSchema = DeviceFactsSchema.extend({
  uptime: z.number().nonnegative(),
  cpu: z.object({
    usage_percent: z.number(),
    cores: z.number().int().positive(),
    load_average: z.tuple([z.number(), z.number(), z.number()]),
  }),
  memory: z.object({
    total: z.number().int().nonnegative(),
    available: z.number().int().nonnegative(),
    used: z.number().int().nonnegative(),
    used_percent: z.number(),
    swap_total: z.number().int().nonnegative(),
    swap_used: z.number().int().nonnegative(),
  }),
  /**
   * The root filesystem, as PiTunnel devices report it: [total, used, available, percent used],
   * the last psutil's used ÷ (used + available) (the seed's table says "Percentage Free"; its
   * example and real devices send this).
   */
  disk_usage: z.tuple([z.number().int(), z.number().int(), z.number().int(), z.number()]),
  disks: z.array(DiskSchema),
  cpu_temp: z.number().nullable(),
  gpu_temp: z.number().nullable(),
});
export type DeviceInfo = z.infer<typeof DeviceInfoSchema>;

export const ProcessSchema = z.object({
  pid: z.number().int().positive(),
  name: z.string(),
  cpu_percent: z.number().nonnegative(),
  memory_percent: z.number().nonnegative(),
  rss: z.number().int().nonnegative(),
  state: z.string(),
  user: z.string(),
  cmdline: z.string(),
});
export type Process = z.infer<typeof ProcessSchema>;

export const ProcessListSchema = z.object({ processes: z.array(ProcessSchema) });
export type ProcessList = z.infer<typeof ProcessListSchema>;
