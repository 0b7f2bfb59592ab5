/** Types for urls.js (plain browser JavaScript, also imported by the Node tests). */
export declare const ROOM_NAME: RegExp;
export declare function socketUrl(endpoint: string, params?: Record<string, string | number | boolean | null | undefined>, page?: { href: string }): string;
export declare function pageUrl(target: string, params?: Record<string, string>, page?: { href: string }): string;
