// NIP-11 relay information document.
import type { RelayLimits } from './limits.ts';

export const SUPPORTED_NIPS = [1, 9, 11, 40, 42, 45, 70] as const;

export interface RelayInfoConfig {
  name: string;
  description: string;
  pubkey?: string;
  contact?: string;
  authRequired: boolean;
  restrictedWrites: boolean;
  minPowDifficulty?: number;
  /** The key that signs this relay's NIP-85 reputation assertions (hex), announced as `reputation_pubkey`. */
  reputationPubkey?: string;
}

export const CORS_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': '*',
  'Access-Control-Allow-Methods': 'GET, OPTIONS',
});

/** `extraNips`: NIPs of optional features that are on (77 when negentropy sync is served). */
export function relayInfo(cfg: RelayInfoConfig, limits: RelayLimits, version: string, extraNips: readonly number[] = []): Record<string, unknown> {
  return {
    name: cfg.name,
    description: cfg.description,
    ...(cfg.pubkey ? { pubkey: cfg.pubkey } : {}),
    ...(cfg.contact ? { contact: cfg.contact } : {}),
    supported_nips: [...new Set([...SUPPORTED_NIPS, ...extraNips])].sort((a, b) => a - b),
    ...(cfg.reputationPubkey ? { reputation_pubkey: cfg.reputationPubkey } : {}),
    version,
    limitation: {
      max_message_length: limits.maxMessageBytes,
      max_subscriptions: limits.maxSubscriptions,
      max_filters: limits.maxFilters,
      max_limit: limits.maxLimit,
      default_limit: limits.maxLimit,
      max_subid_length: limits.maxSubIdLength,
      max_event_tags: limits.maxTags,
      max_content_length: limits.maxContentLength,
      min_pow_difficulty: cfg.minPowDifficulty ?? 0,
      auth_required: cfg.authRequired,
      payment_required: false,
      restricted_writes: cfg.restrictedWrites,
      ...(limits.createdAtPastSecs > 0 ? { created_at_lower_limit: limits.createdAtPastSecs } : {}),
      created_at_upper_limit: limits.createdAtFutureSecs,
    },
  };
}
