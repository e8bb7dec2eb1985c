//! Signing in, and who is signed in (the top bar's corner).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::accounts::{get_session, SignIn, SignOut};
use crate::components::ErrorBox;

/// The sign-in form. Posts to the server function with or without JavaScript; on success
/// the server sets the session cookie and sends the browser on to `next`.
#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next").unwrap_or_else(|| "/".into()));
    let sign_in = ServerAction::<SignIn>::new();
    view! {
        <Title text="Sign in" />
        <section class="sign-in">
            <h1>"Sign in"</h1>
            <ActionForm action=sign_in>
                <input type="hidden" name="next" prop:value=next />
                <label>"Name" <input name="name" autocomplete="username" required=true maxlength="64" /></label>
                <label>"Password" <input name="password" type="password" autocomplete="current-password" required=true maxlength="1024" /></label>
                <button type="submit">"Sign in"</button>
            </ActionForm>
            {move || sign_in.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e /> })}
            <p class="muted small">"Accounts are made by whoever runs this server (inoculab user add)."</p>
        </section>
    }
}

/// The signed-in account's name and role with a sign-out button (nothing on a server
/// without sign-in).
#[component]
pub fn SessionBar() -> impl IntoView {
    // Asked again on every navigation: signing in and out move to another page without a
    // reload, and the bar must follow.
    let location = leptos_router::hooks::use_location();
    let session = Resource::new(move || location.pathname.get(), |_| get_session());
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                session.await.ok().flatten().map(|s| view! {
                    <span class="session" data-testid="session">
                        {(s.role == wire::accounts::Role::Owner).then(|| view! { <a href="/links">"Links"</a> " · " })}
                        {format!("{} ({})", s.name, s.role.as_str())}
                        <ActionForm action=sign_out attr:class="inline">
                            <button type="submit" class="small">"Sign out"</button>
                        </ActionForm>
                    </span>
                })
            })}
        </Suspense>
    }
}

/// Every share link (owners), with its experiment and a *Revoke* button.
#[component]
pub fn LinksPage() -> impl IntoView {
    use crate::api::accounts::{list_share_links, RevokeShareLink};
    let revoke = ServerAction::<RevokeShareLink>::new();
    let links = Resource::new(move || revoke.version().get(), |_| list_share_links(None));
    view! {
        <Title text="Share links" />
        <h1>"Share links"</h1>
        <p class="small">"Every read-only report link of this server. A revoked or expired link opens nothing."</p>
        <Suspense fallback=crate::components::Loading>
            {move || Suspend::new(async move {
                match links.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(l) if l.is_empty() => view! { <p class="empty">"No links yet: a report's Share panel makes them."</p> }.into_any(),
                    Ok(l) => view! { <ShareLinksTable links=l revoke with_experiment=true /> }.into_any(),
                }
            })}
        </Suspense>
        {move || revoke.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e /> })}
    }
}

/// Share links with their state and a *Revoke* button for the live ones.
#[component]
pub fn ShareLinksTable(
    links: Vec<wire::accounts::ShareLinkView>,
    revoke: ServerAction<crate::api::accounts::RevokeShareLink>,
    /// A column linking each link's report (the all-links page).
    with_experiment: bool,
) -> impl IntoView {
    use crate::api::accounts::RevokeShareLink;
    use crate::components::short_time;
    view! {
        <div class="scroll" tabindex="0"><table class="results share-links">
            <thead><tr><th>"link"</th>{with_experiment.then(|| view! { <th>"experiment"</th> })}<th>"made"</th><th>"by"</th><th>"expires"</th><th>"state"</th><th></th></tr></thead>
            <tbody>
                {links.into_iter().map(|link| {
                    let live = !link.revoked && !link.expired;
                    let state = if link.revoked { "revoked" } else if link.expired { "expired" } else { "live" };
                    let handle = link.id.clone();
                    let experiment = link.experiment_id;
                    view! {
                        <tr data-link=link.id.clone()>
                            <td><code>{link.id.clone()}</code></td>
                            {with_experiment.then(|| view! { <td><a href=format!("/experiments/{experiment}/report")>{format!("#{experiment}")}</a></td> })}
                            <td>{short_time(&link.created_at)}</td>
                            <td>{link.created_by.clone().unwrap_or_default()}</td>
                            <td>{link.expires_at.as_deref().map(short_time).unwrap_or_else(|| "never".into())}</td>
                            <td>{state}</td>
                            <td>{live.then(|| view! {
                                <button class="small" on:click=move |_| { revoke.dispatch(RevokeShareLink { id: handle.clone() }); }>"Revoke"</button>
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
}
