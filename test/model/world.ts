/**
 * The model's world: the shop (VersaCommerce), Komfortkasse and Klar as in-process fakes
 * that answer each call as the schedule says, and remember everything the invariants need
 * (which content each upstream accepted, in which order, with which status).
 *
 * The real clients reach them through `fetch` (see engine.ts); no socket is opened.
 */
import type { Fault } from './schedule.ts';

export const BASE_URLS = {
  komfortkasse: 'http://komfortkasse.model/api/v2',
  klar: 'http://klar.model',
  versacommerce: 'http://shop.model',
} as const;

export type Upstream = 'komfortkasse' | 'klar' | 'versacommerce';

/** One version of an order in the shop; `deleted` ends its life. */
export interface ShopVersion {
  version: number;
  raw: Record<string, unknown> | undefined;
  deleted: boolean;
}

export interface ShopOrder {
  id: number;
  code: string;
  versions: ShopVersion[];
}

/** What Komfortkasse holds for one order number, and every call it answered for it. */
export interface KomfortkasseEntry {
  exists: boolean;
  /** not removed (DISAPPEARED) */
  active: boolean;
  payload?: Record<string, unknown>;
  remindersStopped: boolean;
  /** planted "from an earlier integration" */
  seeded: boolean;
  accepted: number;
  acceptedWithLevel: number;
  log: { step: number; action: 'submit' | 'remove' | 'read'; status: number; withLevel: boolean; shopDeleted: boolean }[];
  /** a 400 the schedule injected (a permanent refusal of our content) */
  refusedPermanently: boolean;
}

export interface KlarEntry {
  /** the cost Klar holds now (the last accepted upload) */
  cost?: number;
  uploads: number[];
  invalid: boolean;
}

export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Thrown by the fake fetch when the call "times out": a network error, as undici raises it. */
export class LostAnswer extends TypeError {
  constructor() {
    super('fetch failed');
  }
}

export class World {
  shop = new Map<number, ShopOrder>();
  komfortkasse = new Map<string, KomfortkasseEntry>();
  klar = new Map<string, KlarEntry>();
  step = 0;
  /** Komfortkasse refuses initialDunningLevel on an order it already holds, as the real API does */
  constructor(readonly strictKomfortkasse: boolean) {}

  current(order: ShopOrder): ShopVersion {
    return order.versions[order.versions.length - 1]!;
  }

  kkEntry(code: string): KomfortkasseEntry {
    let entry = this.komfortkasse.get(code);
    if (!entry) {
      entry = { exists: false, active: false, remindersStopped: false, seeded: false, accepted: 0, acceptedWithLevel: 0, log: [], refusedPermanently: false };
      this.komfortkasse.set(code, entry);
    }
    return entry;
  }

  klarEntry(orderId: string): KlarEntry {
    let entry = this.klar.get(orderId);
    if (!entry) {
      entry = { uploads: [], invalid: false };
      this.klar.set(orderId, entry);
    }
    return entry;
  }

  private orderByCode(code: string): ShopOrder | undefined {
    return [...this.shop.values()].find((o) => o.code === code);
  }

  /**
   * Answers one HTTP call. `fault` is what the schedule injects into this call; a
   * `timeout-after` applies the call and then loses the answer.
   */
  answer(upstream: Upstream, method: string, url: URL, body: unknown, fault: Fault | undefined, seen: (version: ShopVersion) => void): Answer {
    this.step++;
    const kind = fault?.kind;
    if (kind === 'timeout-before') throw new LostAnswer();
    if (kind !== undefined && typeof kind === 'number' && kind !== 400 && kind !== 404) return faultAnswer(kind);
    let answer: Answer;
    switch (upstream) {
      case 'versacommerce':
        if (kind === 404) return { status: 404, body: { error: 'Not Found' } };
        answer = this.shopAnswer(method, url, seen);
        break;
      case 'komfortkasse':
        answer = this.komfortkasseAnswer(method, url, body, kind === 400);
        break;
      case 'klar':
        answer = this.klarAnswer(method, url, body, kind === 400);
        break;
    }
    if (kind === 'timeout-after') throw new LostAnswer();
    return answer;
  }

  private shopAnswer(method: string, url: URL, seen: (version: ShopVersion) => void): Answer {
    const path = url.pathname;
    if (method !== 'GET') return { status: 405, body: { error: 'Method not allowed' } };
    const live = [...this.shop.values()].filter((o) => !this.current(o).deleted).sort((a, b) => a.id - b.id);
    if (path === '/api/orders/count.json') return { status: 200, body: { count: live.length } };
    if (path === '/api/orders.json') {
      const q = url.searchParams;
      let list = live;
      const code = q.get('code');
      if (code) list = list.filter((o) => o.code === code);
      const idMin = q.get('id_min');
      if (idMin) list = list.filter((o) => o.id >= Number(idMin));
      const offset = Number(q.get('offset') ?? 0);
      const limit = Number(q.get('limit') ?? 50);
      const page = list.slice(offset, offset + limit);
      return { status: 200, body: page.map((o) => ({ order: this.current(o).raw })) };
    }
    const match = /^\/api\/orders\/(\d+)\.json$/.exec(path);
    if (!match) return { status: 404, body: { error: 'Not Found' } };
    const order = this.shop.get(Number(match[1]));
    if (!order) return { status: 404, body: { error: 'Not Found' } };
    const version = this.current(order);
    seen(version);
    if (version.deleted) return { status: 404, body: { error: 'Not Found' } };
    return { status: 200, body: { order: version.raw } };
  }

  private komfortkasseAnswer(method: string, url: URL, body: unknown, refuse: boolean): Answer {
    const path = url.pathname.replace(/^\/api\/v2/, '');
    if (method === 'GET' && path === '/orders') {
      const open = [...this.komfortkasse.entries()].filter(([, e]) => e.exists && e.active && !e.remindersStopped);
      return { status: 200, body: open.map(([code]) => this.view(code)) };
    }
    const read = /^\/order\/([^/]+)$/.exec(path);
    if (method === 'GET' && read) {
      const code = decodeURIComponent(read[1]!);
      const entry = this.komfortkasse.get(code);
      if (!entry?.exists) return { status: 404, body: { error: 'Order not found' } };
      return { status: 200, body: this.view(code) };
    }
    const remove = /^\/order\/remove\/([^/]+)$/.exec(path);
    if (method === 'POST' && remove) {
      const code = decodeURIComponent(remove[1]!);
      const entry = this.kkEntry(code);
      const shopDeleted = this.shopDeleted(code);
      if (refuse) {
        entry.log.push({ step: this.step, action: 'remove', status: 400, withLevel: false, shopDeleted });
        entry.refusedPermanently = true;
        return { status: 400, body: { error: 'Invalid request: order cannot be removed' } };
      }
      if (!entry.exists) {
        entry.log.push({ step: this.step, action: 'remove', status: 404, withLevel: false, shopDeleted });
        return { status: 404, body: { error: 'Order not found' } };
      }
      entry.active = false;
      entry.log.push({ step: this.step, action: 'remove', status: 200, withLevel: false, shopDeleted });
      return { status: 200, body: { ...this.view(code), paymentStatus: 'DISAPPEARED' } };
    }
    const submit = /^\/order\/([^/]+)$/.exec(path);
    if (method === 'POST' && submit) {
      const code = decodeURIComponent(submit[1]!);
      const entry = this.kkEntry(code);
      const payload = (body ?? {}) as Record<string, unknown>;
      const withLevel = payload.initialDunningLevel !== undefined;
      const shopDeleted = this.shopDeleted(code);
      if (refuse) {
        entry.log.push({ step: this.step, action: 'submit', status: 400, withLevel, shopDeleted });
        entry.refusedPermanently = true;
        return { status: 400, body: { error: 'Invalid request: customerEmail is not valid' } };
      }
      if (withLevel && entry.exists && this.strictKomfortkasse) {
        entry.log.push({ step: this.step, action: 'submit', status: 400, withLevel, shopDeleted });
        return { status: 400, body: { error: 'Invalid request: initialDunningLevel is only allowed when the order is created' } };
      }
      entry.exists = true;
      entry.active = true;
      entry.payload = payload;
      if (typeof payload.stopReminder === 'boolean') entry.remindersStopped = payload.stopReminder;
      entry.accepted++;
      if (withLevel) entry.acceptedWithLevel++;
      entry.log.push({ step: this.step, action: 'submit', status: 200, withLevel, shopDeleted });
      return { status: 200, body: this.view(code) };
    }
    return { status: 404, body: { error: 'Not found' } };
  }

  private view(code: string): Record<string, unknown> {
    const entry = this.kkEntry(code);
    return {
      number: code,
      referenceNumber: `R-${code}`,
      paymentStatus: !entry.active ? 'DISAPPEARED' : entry.remindersStopped ? 'PAID' : 'UNPAID',
      ...(typeof entry.payload?.amount === 'number' ? { amount: entry.payload.amount } : {}),
      ...(typeof entry.payload?.date === 'string' ? { date: entry.payload.date } : {}),
    };
  }

  private shopDeleted(code: string): boolean {
    const order = this.orderByCode(code);
    return order ? this.current(order).deleted : false;
  }

  private klarAnswer(method: string, url: URL, body: unknown, refuse: boolean): Answer {
    if (method !== 'POST' || !url.pathname.endsWith('/transaction-costs/json')) return { status: 404, body: { error: 'Not found' } };
    const items = (Array.isArray(body) ? body : ((body as { items?: unknown[] })?.items ?? [])) as { orderId: string; transactionCosts: number }[];
    if (refuse) {
      // INVALID names the first entry; Klar stores nothing of the request.
      const first = items[0];
      if (first) this.klarEntry(first.orderId).invalid = true;
      return { status: 400, body: { status: 'INVALID', errors: [{ key: '0.transactionCosts', message: 'transactionCosts is not valid' }] } };
    }
    for (const item of items) {
      const entry = this.klarEntry(item.orderId);
      entry.cost = item.transactionCosts;
      entry.uploads.push(item.transactionCosts);
    }
    return { status: 200, body: { status: 'VALID' } };
  }
}

function faultAnswer(status: number): Answer {
  const headers: Record<string, string> = status === 429 ? { 'retry-after': '1' } : {};
  const error = status === 401 ? 'Invalid API Key' : status === 429 ? 'Too many requests' : 'Service unavailable';
  return { status, body: { error }, headers };
}
